"""``GRPOGeometricMLLM``: any ``GeometricMLLM`` config trained by GRPO, under the unchanged SFT runner.

Switch a config to GRPO by changing the model's type and adding ``grpo`` (every other model key is inherited)::

    model = dict(type='GRPOGeometricMLLM', grpo=dict(group_size=8, temperature=1.0, max_new_tokens=16,
                 rewards=[dict(type='VSIAccuracyReward'), dict(type='FormatReward', mode='bare', weight=0.5)],
                 loss=dict(type='GRPOPolicyLoss', clip_low=0.2, clip_high=0.28, beta=0.0, loss_type='grpo')))
    load_from = 'work_dirs/spatial_mllm/config/iter_150.safetensors'       # the SFT checkpoint

The state dict is the policy's own (same keys as ``GeometricMLLM``), so ``load_from`` reads an SFT checkpoint and
``tools/test.py``/export read a GRPO one. One training iteration (``forward(mode='loss')``, so mmengine's
``train_step``, DDP/FSDP wrappers, optimizer wrapper, hooks and checkpoints are those of SFT):

1. the batch's prompts (the data preprocessor's *inference* layout: left-padded, no answer) are repeated ``G``
   times and ``G`` completions per prompt are sampled (no grad; seeded by ``(sampling_seed, rollout step,
   rank)``, see :func:`geokit.rl.rollout.sampling_seed`; vision/geometry placeholder tokens are suppressed, and
   the log-probs below use the same suppressed distribution);
2. each completion is scored by the rewards (``REWARDS``); total = weighted sum; advantages are normalised within
   each group (:func:`geokit.rl.group_advantages`); optionally the groups whose rewards are all equal are dropped
   from the loss (``filter_zero_variance``, DAPO);
3. the completions' log-probabilities are computed with grad by the SFT forward (vision + fusion + LLM,
   :meth:`GeometricMLLM.completion_logps`), under the frozen reference model too when ``beta > 0`` (loaded
   from ``reference_checkpoint`` at the first step);
4. ``loss_grpo`` = the clipped policy-gradient loss (:class:`geokit.rl.GRPOPolicyLoss`).

One optimizer step per rollout (TRL's default ``num_iterations=1``): the sampling policy is the current one, so
``old_logps = logps.detach()`` and the ratio is 1 at the step; the clip ranges take effect when rollouts are reused
(not offered here).

Logged per step: ``reward`` (mean total), ``reward/<name>`` (each part, unweighted), ``reward_std`` (mean
within-group std of the total), ``kl`` (when ``beta > 0``), ``clip_fraction``, ``completion_length`` (tokens,
``<|im_end|>`` included), ``groups_kept`` (fraction of groups in the loss).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.logging import print_log
from mmengine.model import BaseDataPreprocessor

from geokit.models.geometric_mllm import GeometricMLLM
from geokit.registry import LOSSES, MODELS
from geokit.rl.advantages import SCALE_MODES, group_advantages, group_reward_std, nonzero_variance_groups
from geokit.rl.rewards import build_rewards
from geokit.rl.rollout import completion_mask, repeat_batch, repeat_vision_outputs, sampling_seed, seeded_sampling


@dataclass
class GRPOSettings:
    """``model.grpo`` of a :class:`GRPOGeometricMLLM` config.

    Attributes:
        group_size: ``G``, completions sampled per prompt.
        temperature / top_p / top_k: sampling (``top_k=0``: no top-k cut).
        max_new_tokens: completion length limit (also ``dr_grpo``'s normaliser).
        rewards: REWARDS configs, each with its ``weight``.
        loss: LOSSES config of the policy loss (``GRPOPolicyLoss``: clip ranges, ``beta``, ``loss_type``).
        scale_rewards: advantage normalisation, ``'group'`` (GRPO), ``'batch'`` or ``'none'`` (Dr. GRPO).
        filter_zero_variance: drop groups whose rewards are all equal from the loss (DAPO's filter; DAPO also
            re-samples to refill the batch, which is not done here, so the batch shrinks instead).
        reference_checkpoint: weights of the frozen KL reference (usually the SFT checkpoint, = ``load_from``);
            required when the loss's ``beta > 0``, unused (no reference is built) when ``beta == 0``.
        sampling_seed: base seed of the rollouts' sampling.
    """

    group_size: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 16
    rewards: list = field(default_factory=lambda: [dict(type='VSIAccuracyReward')])
    loss: dict = field(default_factory=lambda: dict(type='GRPOPolicyLoss'))
    scale_rewards: str = 'group'
    filter_zero_variance: bool = False
    reference_checkpoint: str | None = None
    sampling_seed: int = 0

    @classmethod
    def from_config(cls, cfg: dict) -> GRPOSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f'model.grpo has unknown keys {sorted(unknown)}; known: {sorted(known)}.')
        settings = cls(**cfg)
        if settings.group_size < 2:
            raise ValueError(f'model.grpo.group_size={settings.group_size}: GRPO compares completions within a '
                             f'group, so it needs at least 2.')
        if settings.temperature <= 0:
            raise ValueError(f'model.grpo.temperature={settings.temperature} must be > 0 (rollouts are sampled).')
        if settings.scale_rewards not in SCALE_MODES:
            raise ValueError(f'model.grpo.scale_rewards={settings.scale_rewards!r}; choose one of {SCALE_MODES}.')
        return settings

    def generation_overrides(self) -> dict:
        return dict(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                    max_new_tokens=self.max_new_tokens, num_beams=1)


class PromptDataPreprocessor(BaseDataPreprocessor):
    """The policy's data preprocessor in its inference layout for every batch, training included: GRPO samples
    the answers itself, so a training batch is prompts (left-padded, no answer; geometry tokens iff
    ``geometry_tokens_in_predict``) plus the samples' meta (``question_type``, ``ground_truth``) for the rewards."""

    def __init__(self, preprocessor: BaseDataPreprocessor) -> None:
        super().__init__()
        self.preprocessor = preprocessor

    def forward(self, data, training: bool = False) -> dict:
        return self.preprocessor(data, training=False)


@MODELS.register_module()
class GRPOGeometricMLLM(GeometricMLLM):
    """GRPO on a ``GeometricMLLM`` (see the module docstring).

    Args:
        grpo: :class:`GRPOSettings` fields.
        **kwargs: the ``GeometricMLLM`` arguments of the policy (backbone, fusion, ...), unchanged from SFT.
    """

    #: an SFT checkpoint (``load_from``) has no rollout counter: a GRPO run from it starts at rollout 0
    checkpoint_optional_keys = ('rollout_step',)

    def __init__(self, grpo: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.grpo = GRPOSettings.from_config(dict(grpo or {}))
        self.rewards = build_rewards(self.grpo.rewards)
        self.policy_loss = LOSSES.build(self.grpo.loss)
        self.data_preprocessor = PromptDataPreprocessor(self.data_preprocessor)
        self.register_buffer('rollout_step', torch.zeros((), dtype=torch.long))
        if self.beta > 0 and not self.grpo.reference_checkpoint:
            raise ValueError(f'GRPOPolicyLoss beta={self.beta} > 0 needs a frozen reference model: set '
                             f'model.grpo.reference_checkpoint to the SFT checkpoint (usually the same file as '
                             f'load_from), or beta=0 to train without a KL term.')
        self._policy_kwargs = kwargs
        self.frozen['reference'] = None  # built on first use (:attr:`reference`)

    @property
    def beta(self) -> float:
        return float(getattr(self.policy_loss, 'beta', 0.0))

    @property
    def reference(self) -> GeometricMLLM | None:
        """The frozen KL reference when ``beta > 0``, held in :attr:`frozen` beside the teachers (outside the module
        tree: not trained, not checkpointed, not DDP-wrapped; moved by ``.to()``). Built from
        ``reference_checkpoint`` on first use, so evaluation and export never load it."""
        if self.beta <= 0:
            return None
        if self.frozen['reference'] is None:
            anchor = next(self.parameters())
            self.frozen['reference'] = self._build_reference(self._policy_kwargs).to(anchor.device)
        return self.frozen['reference']

    def _build_reference(self, kwargs: dict) -> GeometricMLLM:
        from geokit.engine.runner import load_checkpoint_file
        path = self.grpo.reference_checkpoint
        reference_kwargs = dict(kwargs, teacher=None, scale_teacher=None, objectives=())
        reference = GeometricMLLM(**reference_kwargs)
        state = load_checkpoint_file(path)['state_dict']
        state = {key.removeprefix('module.'): value for key, value in state.items()}
        result = reference.load_state_dict(state, strict=False)
        wanted = set(reference.state_dict())
        if not wanted & set(state):
            raise ValueError(f'model.grpo.reference_checkpoint={path!r} holds none of the model weights; give the '
                             f'SFT checkpoint of this model.')
        if result.missing_keys:
            print_log(f'GRPO reference: {len(result.missing_keys)} weights not in {path} keep their initial '
                      f'values (e.g. {result.missing_keys[:3]}).', logger='current', level='WARNING')
        return reference  # frozen by FrozenModules when stored (:attr:`reference`)

    # ------------------------------------------------------------------ rollouts
    @torch.no_grad()
    def rollout(self, inputs: dict, data_samples: dict) -> dict:
        """Sample ``G`` completions per prompt and score them.

        Returns:
            ``inputs`` / ``data_samples`` (the prompt batch repeated to ``B * G`` rows), ``completion_ids``
            ``(B * G, C)`` (pad after ``<|im_end|>``), ``completion_mask`` ``(B * G, C)``, ``texts``,
            ``rewards`` ``(B * G,)`` total, ``reward_parts`` ``{name: (B * G,)}`` unweighted.
        """
        group_inputs, group_samples = repeat_batch(inputs, data_samples, self.grpo.group_size)
        seed = sampling_seed(self.grpo.sampling_seed, int(self.rollout_step), get_rank())
        overrides = dict(self.grpo.generation_overrides(), suppress_tokens=self.multimodal_token_ids)
        if get_world_size() > 1:
            overrides['synced_gpus'] = True  # every rank steps until all are done (FSDP gathers in each step)
        vision = repeat_vision_outputs(self.encode_vision(inputs, data_samples), self.grpo.group_size)
        with seeded_sampling(seed):
            completion = self.generate_ids(group_inputs, group_samples, vision=vision, **overrides)
        self.rollout_step += 1
        mask = completion_mask(completion, self.end_of_turn_id)
        completion = completion.masked_fill(mask == 0, self.backbone.pad_token_id)
        texts = [text.strip() for text in
                 self.backbone.processor.tokenizer.batch_decode(completion, skip_special_tokens=True)]
        device = completion.device
        parts = {reward.name: torch.tensor(reward(texts, group_samples['meta']), dtype=torch.float32, device=device)
                 for reward in self.rewards}
        total = sum(reward.weight * parts[reward.name] for reward in self.rewards)
        return dict(inputs=group_inputs, data_samples=group_samples, completion_ids=completion,
                    completion_mask=mask, texts=texts, rewards=total, reward_parts=parts)

    # ------------------------------------------------------------------ loss
    def loss(self, inputs: dict, data_samples: dict) -> dict[str, torch.Tensor]:
        """One GRPO step's loss ``loss_grpo`` and its logged statistics (see the module docstring)."""
        rollout = self.rollout(inputs, data_samples)
        group_size = self.grpo.group_size
        rewards, mask = rollout['rewards'], rollout['completion_mask']
        advantages = group_advantages(rewards, group_size, scale=self.grpo.scale_rewards)
        keep = nonzero_variance_groups(rewards, group_size) if self.grpo.filter_zero_variance else \
            torch.ones_like(rewards, dtype=torch.bool)
        logps = self.completion_logps(rollout['inputs'], rollout['data_samples'], rollout['completion_ids'], mask,
                                      temperature=self.grpo.temperature, suppress_token_ids=self.multimodal_token_ids,
                                      vision=repeat_vision_outputs(self.encode_vision(inputs, data_samples),
                                                                   group_size))
        ref_logps = None
        if self.reference is not None:
            with torch.no_grad():
                reference_vision = repeat_vision_outputs(self.reference.encode_vision(inputs, data_samples),
                                                         group_size)
                ref_logps = self.reference.completion_logps(rollout['inputs'], rollout['data_samples'],
                                                            rollout['completion_ids'], mask,
                                                            temperature=self.grpo.temperature,
                                                            suppress_token_ids=self.multimodal_token_ids,
                                                            vision=reference_vision)
        rows = keep.nonzero().squeeze(1)
        loss_mask = mask[rows]
        if not rows.numel():
            # every group tied: nothing to learn, but the graph still reaches every parameter (DDP) and the loss's
            # collectives (the 'dapo' token count) still run on this rank
            rows, loss_mask = torch.arange(len(keep), device=keep.device), torch.zeros_like(mask)
        loss, stats = self.policy_loss(logps[rows], logps[rows].detach(), advantages[rows], loss_mask,
                                       ref_logps=None if ref_logps is None else ref_logps[rows],
                                       max_completion_length=self.grpo.max_new_tokens)
        out = {'loss_grpo': loss, 'reward': rewards.mean(),
               **{f'reward/{name}': value.mean() for name, value in rollout['reward_parts'].items()},
               'reward_std': group_reward_std(rewards, group_size).mean(),
               'clip_fraction': stats['clip_fraction'],
               'completion_length': mask.sum(1).float().mean(),
               'groups_kept': keep.float().mean()}
        if 'kl' in stats:
            out['kl'] = stats['kl']
        return out
