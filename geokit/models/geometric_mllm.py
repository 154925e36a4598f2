"""``GeometricMLLM``: one generic model for GeoVR, Spatial-MLLM and their hybrids, composed from config.

    model = dict(
        type='GeometricMLLM',
        backbone=dict(type='Qwen3VLBackbone', path='geokit://mllms/tiny-qwen3vl', load_weights=False),
        data_preprocessor=dict(type='QwenVLDataPreprocessor'),
        teacher=dict(type='VGGTTeacher', ...),            # optional (TEACHERS); frozen, outside the module tree
        scale_teacher=None,                                # optional metric reference for the teacher's scale
        objectives=[                                       # any subset, any order; names give loss_<name>
            dict(name='pose', tap=dict(tokens='camera'), head=dict(type='CameraHead'),
                 loss=dict(type='CameraPoseLoss', loss_weight=2.5)),
            dict(name='depth', tap=dict(tokens='video', teacher_layers=[4, 11, 17, 23], teacher_num_layers=24),
                 head=dict(type='DPTDepthHead'), loss=dict(type='ConfidenceDepthLoss')),
            dict(name='scale', tap=dict(tokens='scale'), head=dict(type='ScaleHead'),
                 loss=dict(type='MetricScaleLoss')),
            dict(name='align', tap=dict(tokens='video', teacher_layers=[4, 11, 17, 23], teacher_num_layers=24),
                 head=dict(type='FeatureAlignmentHead', out_channels=2048, num_layers=4),
                 loss=dict(type='FeatureAlignmentLoss')),
        ],
        fusion=None,                                       # optional (CONNECTORS), see below; Spatial-MLLM:
        # dict(type='SpatialEncoderFusion', spatial_encoder=dict(type='VGGTSpatialEncoder', ...),
        #      connector=dict(type='MLPAddConnector'))    # sizes from the backbone and the encoder
    )

Fusion extension point (Spatial-MLLM): if ``fusion=dict(type=...)`` is set, a module is built from CONNECTORS and
called once per forward, after the stock ViT and before the LLM::

    vision_embeds = fusion(vision_embeds=(N, D) merged ViT tokens of all videos, concatenated in batch order and
                           in the merger's (t, h, w) order, frames=uint8 (B, T, H, W, 3) (or a list of
                           (T, H, W, 3)), video_grid_thw=(B, 3) patch grid before the spatial merge,
                           meta=list[dict])  ->  (N, D)

Its output replaces the ViT tokens (Qwen3-VL's DeepStack features are left as the ViT made them). Everything it
owns (e.g. a frozen spatial encoder) lives under ``model.fusion``. The connector of ``SpatialEncoderFusion`` gets
the backbone's sizes as defaults (``llm_dim``, ``spatial_merge_size``, ``temporal_patch_size``), as heads get
``in_channels`` and ``frames_per_token``, so a config names only what differs. See docs/architecture.md,
"Fusion contract" and "Data flow of one training step".

Geometry tokens: whether a batch has them and whether the objectives' taps are read is decided by one rule,
:func:`geometry_token_use` (see there).
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from geokit.models.frozen import FrozenModules, HoldsFrozenModules
from geokit.models.heads.base import HeadContext
from geokit.models.mllms.taps import HiddenStateTaps, TapRequest, Taps
from geokit.models.teachers.metric_scale import with_reference_metric_scale
from geokit.registry import CONNECTORS, HEADS, LOSSES, MLLMS, MODELS, TEACHERS
from geokit.structures import TeacherTargets

OBJECTIVE_KEYS = {'name', 'tap', 'head', 'loss'}
#: ``generate`` arguments of the default (greedy) decoding
GREEDY_GENERATION = dict(do_sample=False, num_beams=1)
#: ``generate`` arguments the model fills in itself
RESERVED_GENERATION_KEYS = {'input_ids', 'attention_mask', 'pixel_values_videos', 'mm_encoder_outputs',
                            'eos_token_id', 'pad_token_id', 'num_return_sequences'}


@dataclass
class GeometricMLLMOutputs:
    """What ``mode='tensor'`` returns.

    Attributes:
        logits: ``(B, L, V)`` next-token logits.
        hidden_states: ``(B, L, D)`` final (normed) hidden states.
        taps: the token groups the objectives read (:class:`~geokit.models.mllms.Taps`).
        predictions: ``{objective name: head outputs}``.
        input_ids: ``(B, L)`` the token ids, geometry tokens included.
    """

    logits: torch.Tensor
    hidden_states: torch.Tensor
    taps: Taps
    predictions: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    input_ids: torch.Tensor | None = None


@dataclass(frozen=True)
class GeometryTokenUse:
    """What one forward does with the geometry (camera/scale) tokens; built by :func:`geometry_token_use`.

    Attributes:
        present: the batch holds them (the data preprocessor's ``inputs['geometry_tokens']``); the backbone then
            gives them their RoPE positions (in the LLM forward and in ``generate``).
        read_taps: the objectives' taps are gathered from the LLM's hidden states and the heads run.
    """

    present: bool
    read_taps: bool


#: the forwards of :class:`GeometricMLLM`, for :func:`geometry_token_use`
FORWARD_KINDS = ('loss', 'tensor', 'geometry', 'generate')


def geometry_token_use(inputs: dict, kind: str, has_objectives: bool) -> GeometryTokenUse:
    """The one rule for geometry tokens, per batch and kind of forward.

    ``present`` is always the batch's own flag (the preprocessor inserts the tokens into training batches, and into
    prompt batches only with ``geometry_tokens_in_predict=True``). Taps are read:

    * ``'loss'``: whenever there are objectives (a camera/scale tap on a batch without the tokens is an error
      naming ``insert_geometry_tokens``, raised where the taps are gathered);
    * ``'tensor'``: when there are objectives and the batch has the tokens (without them it is the plain MLLM);
    * ``'geometry'`` (``predict_geometry``, :meth:`GeometricMLLM.geometry_predictions`): always; the batch must
      have the tokens;
    * ``'generate'`` (generation, :meth:`GeometricMLLM.completion_logps`): never; only the LM runs.

    Raises:
        ValueError: for an unknown ``kind``, or a ``'geometry'`` batch without geometry tokens.
    """
    present = bool(inputs.get('geometry_tokens', False))
    if kind == 'geometry' and not present:
        raise ValueError('Geometry predictions read the camera/scale tokens, but this batch has none. Set '
                         'model.data_preprocessor.geometry_tokens_in_predict=True.')
    read_taps = {'loss': has_objectives, 'tensor': has_objectives and present, 'geometry': True,
                 'generate': False}.get(kind)
    if read_taps is None:
        raise ValueError(f'geometry_token_use: kind must be one of {FORWARD_KINDS}, got {kind!r}.')
    return GeometryTokenUse(present=present, read_taps=read_taps)


class Objective:
    """One geometric objective parsed from its config: name, tap request, head and loss modules."""

    def __init__(self, cfg: dict, llm_num_layers: int, head_defaults: dict, index: int) -> None:
        unknown = set(cfg) - OBJECTIVE_KEYS
        missing = OBJECTIVE_KEYS - set(cfg)
        key = f'model.objectives[{index}]'
        if unknown or missing:
            raise ValueError(f'{key} must have keys {sorted(OBJECTIVE_KEYS)}; missing {sorted(missing)}, unknown '
                             f'{sorted(unknown)}. Example: dict(name="pose", tap=dict(tokens="camera"), '
                             f'head=dict(type="CameraHead"), loss=dict(type="CameraPoseLoss", loss_weight=2.5)).')
        self.name = str(cfg['name'])
        if 'loss' in self.name or '/' in self.name:
            raise ValueError(f'{key}.name={self.name!r} must not contain "loss" or "/" (it becomes loss_<name>).')
        self.tap = TapRequest.from_config(cfg['tap'], llm_num_layers, key=f'{key}.tap')
        self.head = HEADS.build(cfg['head'], default_args=head_defaults)
        self.loss = LOSSES.build(cfg['loss'])



@MODELS.register_module()
class GeometricMLLM(HoldsFrozenModules, BaseModel):
    """A stock Qwen-VL backbone + optional frozen teacher + geometric objectives + optional vision fusion.

    ``forward(inputs, data_samples, mode)`` with the data preprocessor's output (see
    :mod:`geokit.models.data_preprocessor`):

    * ``'loss'``: ``{'loss_lm', 'loss_<objective>'..., '<objective>/<metric>'...}``.
    * ``'predict'``: generation with ``generation_cfg`` (greedy by default); ``[{'prediction': str, 'meta': dict}]``
      per sample.
    * ``'tensor'``: :class:`GeometricMLLMOutputs`.

    Args:
        backbone: MLLMS config (e.g. ``Qwen3VLBackbone``).
        data_preprocessor: MODELS config (default ``QwenVLDataPreprocessor``).
        teacher: TEACHERS config or None; a frozen module outside the model's tree
            (:class:`~geokit.models.frozen.FrozenModules`), with its own checkpoint.
        scale_teacher: optional TEACHERS config of a *metric* reference (``depth`` + ``metric_scale``, e.g.
            ``OracleTeacher`` on SynthVSI), held like the teacher. ``metric_scale`` of the targets then becomes the
            scale aligning the teacher's depth to the reference's metric depth, metres per *teacher* unit
            (:func:`~geokit.models.teachers.metric_scale.with_reference_metric_scale`). Both teachers must share
            the pixel grid of ``depth``.
        objectives: list of ``dict(name, tap, head, loss)`` (see the module docstring and docs/architecture.md,
            "Taps, heads and losses"). Heads live under ``self.heads`` (so
            ``paramwise_cfg.custom_keys={'heads': dict(lr_mult=...)}`` gives them their own learning rate).
        fusion: CONNECTORS config of the vision-fusion module (see the module docstring) or None; built with the
            backbone's ``llm_dim``, ``spatial_merge_size`` and ``temporal_patch_size`` as default arguments.
        lm_loss_weight: weight of the answer cross-entropy ``loss_lm``.
        max_new_tokens: generation length in ``'predict'`` mode, unless ``generation_cfg`` gives its own.
        generation_cfg: keyword arguments of Hugging Face ``generate`` for ``'predict'`` mode and
            :meth:`generate_ids` (e.g. ``dict(do_sample=True, temperature=0.7, top_p=0.8, top_k=20)``). Default
            ``None``: greedy decoding (``do_sample=False, num_beams=1``).
        predict_geometry: in ``'predict'`` mode also run the heads and return each sample's predicted geometry
            under ``'geometry_pred'`` (``pose_enc (T, 9)``, ``depth (T, h, w)``, ``depth_conf``, ``metric_scale ()``
            in the heads' teacher units), for :class:`~geokit.evaluation.GeometryMetric`. Needs geometry tokens in
            the prompt: ``data_preprocessor.geometry_tokens_in_predict=True``.
    """

    def __init__(self, backbone: dict, data_preprocessor: dict | None = None, teacher: dict | None = None,
                 scale_teacher: dict | None = None, objectives: Sequence[dict] = (), fusion: dict | None = None,
                 lm_loss_weight: float = 1.0, max_new_tokens: int = 16, predict_geometry: bool = False,
                 generation_cfg: dict | None = None, init_cfg: dict | None = None) -> None:
        data_preprocessor = data_preprocessor or dict(type='QwenVLDataPreprocessor')
        if isinstance(data_preprocessor, dict):  # geokit's registry, so no default scope is needed
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MLLMS.build(backbone)
        self.data_preprocessor.bind(self.backbone)
        self.frozen = FrozenModules(teacher=TEACHERS.build(teacher) if teacher is not None else None,
                                    scale_teacher=TEACHERS.build(scale_teacher) if scale_teacher is not None else None)
        # frames a temporal token stands for: the ViT's temporal patch, divided by the preprocessor's frame repeat
        repeat = int(getattr(self.data_preprocessor, 'repeat_frames', 1))
        if self.backbone.frames_per_token % repeat:
            raise ValueError(f'model.data_preprocessor.repeat_frames={repeat} must divide the temporal patch size '
                             f'{self.backbone.frames_per_token}.')
        self.frames_per_token = self.backbone.frames_per_token // repeat
        self.fusion = self._build_fusion(fusion) if fusion is not None else None
        head_defaults = dict(in_channels=self.backbone.hidden_size, frames_per_token=self.frames_per_token)
        objectives = [Objective(cfg, self.backbone.num_layers, head_defaults, i) for i, cfg in enumerate(objectives)]
        names = [o.name for o in objectives]
        if len(set(names)) != len(names):
            raise ValueError(f'model.objectives names must be unique, got {names}.')
        self.objective_names = names
        self.heads = nn.ModuleDict({o.name: o.head for o in objectives})
        self.losses = nn.ModuleDict({o.name: o.loss for o in objectives})
        self.taps = {o.name: o.tap for o in objectives}
        self.lm_loss_weight = lm_loss_weight
        self.max_new_tokens = max_new_tokens
        self.generation_cfg = dict(GREEDY_GENERATION, max_new_tokens=max_new_tokens, **(generation_cfg or {}))
        reserved = RESERVED_GENERATION_KEYS & set(generation_cfg or {})
        if reserved:
            raise ValueError(f'model.generation_cfg must not set {sorted(reserved)}: the model passes its inputs, '
                             f'the end-of-turn token and the pad token itself.')
        self.predict_geometry = predict_geometry
        self._tapper = HiddenStateTaps(self.backbone.decoder_layers)

    # ------------------------------------------------------------------ teachers (frozen, outside the module tree)
    @property
    def teacher(self) -> nn.Module | None:
        return self.frozen['teacher']

    @property
    def scale_teacher(self) -> nn.Module | None:
        return self.frozen['scale_teacher']

    # ------------------------------------------------------------------ fusion with the backbone's sizes
    def backbone_sizes(self) -> dict[str, int]:
        """The backbone's sizes a fusion module (and its connector) takes as defaults: ``llm_dim`` (the width of
        the merged vision tokens = the LLM hidden size), ``spatial_merge_size``, and ``temporal_patch_size`` = the
        input frames one temporal token stands for (the ViT's temporal patch divided by the data preprocessor's
        ``repeat_frames``: with GeoVR's repeat 2, one token per frame the spatial encoder sees)."""
        return dict(llm_dim=self.backbone.hidden_size, spatial_merge_size=self.backbone.spatial_merge_size,
                    temporal_patch_size=self.frames_per_token)

    def _build_fusion(self, cfg: dict) -> nn.Module:
        """CONNECTORS entry ``cfg`` with :meth:`backbone_sizes` as default arguments, those its class declares (a
        fusion without sizes, or with ``**kwargs``, is built as configured / with all of them)."""
        fusion_type = CONNECTORS.get(cfg['type']) if isinstance(cfg['type'], str) else cfg['type']
        if fusion_type is None:
            return CONNECTORS.build(cfg)                      # the registry's own "not registered" error
        parameters = inspect.signature(fusion_type).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        sizes = {key: value for key, value in self.backbone_sizes().items() if takes_any or key in parameters}
        return CONNECTORS.build(cfg, default_args=sizes)

    # ------------------------------------------------------------------ pieces
    def _token_ids(self) -> dict[str, int]:
        return {'video': self.backbone.video_token_id, **self.backbone.geometry_token_ids}

    def encode_vision(self, inputs: dict, data_samples: dict) -> Any:
        """The stock ViT on ``pixel_values_videos``, then the fusion module if there is one.

        Returns the backbone's vision output whose ``pooler_output`` holds one ``(N_i, D)`` tensor of merged
        video tokens per video, as the LLM consumes them.
        """
        vision = self.backbone.encode_video(inputs['pixel_values_videos'], inputs['video_grid_thw'])
        if self.fusion is not None:
            pooled = list(vision.pooler_output)
            fused = self.fusion(vision_embeds=torch.cat(pooled, 0), frames=data_samples['frames'],
                                video_grid_thw=inputs['video_grid_thw'], meta=data_samples['meta'])
            vision.pooler_output = tuple(torch.split(fused, [p.shape[0] for p in pooled], 0))
        return vision

    def _teacher_targets(self, data_samples: dict) -> TeacherTargets | None:
        if self.teacher is None or not self.objective_names:
            return None
        args = (data_samples['frames'], data_samples['meta'], data_samples['geometry'])
        with torch.no_grad():
            targets = self.teacher(*args)
            if self.scale_teacher is not None:
                targets = with_reference_metric_scale(targets, self.scale_teacher(*args))
        names = [m.get('video') or m.get('id') for m in data_samples['meta']]
        targets = targets.detach().masked_invalid(names)
        targets.check_finite(names, consumer=type(self).__name__)
        return targets

    def geometry_token_use(self, inputs: dict, kind: str) -> GeometryTokenUse:
        """:func:`geometry_token_use` for this model's objectives."""
        return geometry_token_use(inputs, kind, bool(self.objective_names))

    def _run(self, inputs: dict, data_samples: dict, use: GeometryTokenUse, vision: Any = None
             ) -> tuple[torch.Tensor, Taps]:
        """Vision (+ fusion, unless ``vision`` gives its output) and the LLM, with the objectives' layers tapped
        if ``use.read_taps``; returns final states and taps."""
        vision = self.encode_vision(inputs, data_samples) if vision is None else vision
        requests = list(self.taps.values()) if use.read_taps else []
        layers = [layer for request in requests for layer in request.layers]
        with self._tapper.capture(layers) as states:
            hidden = self.backbone.language_forward(
                inputs['input_ids'], inputs['attention_mask'], inputs['mm_token_type_ids'], inputs['video_grid_thw'],
                vision, second_per_grid_ts=inputs.get('second_per_grid_ts'), geometry_tokens=use.present)
        taps = Taps.gather(states, requests, inputs['input_ids'], inputs['video_grid_thw'],
                           self.backbone.spatial_merge_size, self._token_ids()) if requests else Taps()
        return hidden, taps

    def _num_frames(self, data_samples: dict) -> int:
        frames = data_samples['frames']
        return int(frames.shape[1]) if isinstance(frames, torch.Tensor) else int(frames[0].shape[0])

    def _head_predictions(self, taps: Taps, num_frames: int, targets: TeacherTargets | None
                          ) -> dict[str, tuple[dict[str, torch.Tensor], HeadContext]]:
        out = {}
        for name in self.objective_names:
            ctx = HeadContext(num_frames=num_frames, targets=targets, teacher_layers=self.taps[name].teacher_layers)
            out[name] = (self.heads[name](taps.select(self.taps[name]), ctx), ctx)
        return out

    # ------------------------------------------------------------------ modes
    def forward(self, inputs: dict, data_samples: dict | None = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"Invalid mode {mode!r}; GeometricMLLM supports 'loss', 'predict' and 'tensor'.")

    def loss(self, inputs: dict, data_samples: dict) -> dict[str, torch.Tensor]:
        """Answer cross-entropy plus every objective's loss (``loss_<name>``) and metrics (``<name>/<metric>``)."""
        if 'labels' not in inputs:
            raise ValueError('mode="loss" needs labels: run the data preprocessor with training=True.')
        targets = self._teacher_targets(data_samples)
        if self.objective_names and targets is None:
            raise ValueError(f'Objectives {self.objective_names} need teacher targets but model.teacher is None. '
                             f'Set model.teacher (e.g. VGGTTeacher, OracleTeacher, CachedTeacher) or drop the '
                             f'objectives.')
        hidden, taps = self._run(inputs, data_samples, self.geometry_token_use(inputs, 'loss'))
        labels = inputs['labels']
        valid = labels[:, 1:] != -100
        logits = self.backbone.lm_logits(hidden[:, :-1][valid]).float()
        losses = {'loss_lm': self.lm_loss_weight * F.cross_entropy(logits, labels[:, 1:][valid])
                  if logits.numel() else hidden.sum() * 0}
        for name, (preds, ctx) in self._head_predictions(taps, self._num_frames(data_samples), targets).items():
            loss_inputs = self.heads[name].loss_inputs(preds, targets, ctx)
            if targets.sample_valid is not None and not bool(targets.sample_valid.all()):
                if not bool(targets.sample_valid.any()):  # nothing valid: a zero loss that keeps the graph
                    losses[f'loss_{name}'] = sum(p.sum() for p in preds.values()) * 0
                    continue
                loss_inputs = _select_samples(loss_inputs, targets.sample_valid)
            out = self.losses[name](**loss_inputs)
            losses[f'loss_{name}'] = out['loss']
            losses.update({f'{name}/{key}': value for key, value in out.items() if key != 'loss'})
        return losses

    def _forward(self, inputs: dict, data_samples: dict) -> GeometricMLLMOutputs:
        """Logits and hidden states; taps and head predictions too when the batch has geometry tokens."""
        use = self.geometry_token_use(inputs, 'tensor')
        targets = self._teacher_targets(data_samples) if use.read_taps else None
        hidden, taps = self._run(inputs, data_samples, use)
        predictions = {name: preds for name, (preds, _) in
                       self._head_predictions(taps, self._num_frames(data_samples), targets).items()} \
            if use.read_taps else {}
        return GeometricMLLMOutputs(logits=self.backbone.lm_logits(hidden), hidden_states=hidden, taps=taps,
                                    predictions=predictions, input_ids=inputs['input_ids'])

    @torch.no_grad()
    def geometry_predictions(self, inputs: dict, data_samples: dict) -> list[dict[str, torch.Tensor]]:
        """Every head's geometry (see ``BaseGeometryHead.geometry_outputs``) per sample, without a teacher."""
        _, taps = self._run(inputs, data_samples, self.geometry_token_use(inputs, 'geometry'))
        merged: dict[str, torch.Tensor] = {}
        for name, (preds, _) in self._head_predictions(taps, self._num_frames(data_samples), None).items():
            merged.update(self.heads[name].geometry_outputs(preds))
        batch = inputs['input_ids'].shape[0]
        return [{key: value[index].float().cpu() for key, value in merged.items()} for index in range(batch)]

    @property
    def multimodal_token_ids(self) -> list[int]:
        """Placeholder tokens that only the processor may place (vision pads and delimiters, geometry tokens): a
        sampled answer must not contain them, since the LLM forward would take them for vision inputs."""
        config = self.backbone.config
        names = ('image_token_id', 'video_token_id', 'vision_start_token_id', 'vision_end_token_id')
        ids = {int(getattr(config, name)) for name in names if getattr(config, name, None) is not None}
        return sorted(ids | set(self.backbone.geometry_token_ids.values()))

    @property
    def end_of_turn_id(self) -> int:
        """Token id that ends an answer (``<|im_end|>``): generation stops there."""
        return int(self.backbone.processor.tokenizer.convert_tokens_to_ids('<|im_end|>'))

    @torch.no_grad()
    def generate_ids(self, inputs: dict, data_samples: dict, vision: Any = None, **overrides) -> torch.Tensor:
        """Generate answer token ids for a batch of prompts.

        Args:
            inputs / data_samples: the data preprocessor's output with ``training=False`` (left-padded prompts).
            vision: :meth:`encode_vision`'s output for this batch if already computed.
            overrides: ``generate`` keyword arguments replacing those of ``generation_cfg`` for this call (e.g.
                ``do_sample=True, temperature=1.0, max_new_tokens=64``).
        Returns:
            ``(B, L_new)`` new token ids only (the prompt is cut off); rows that stopped early are padded with the
            pad token after their ``<|im_end|>``.
        """
        reserved = RESERVED_GENERATION_KEYS & set(overrides)
        if reserved:
            raise ValueError(f'generate_ids overrides must not set {sorted(reserved)}.')
        use = self.geometry_token_use(inputs, 'generate')
        rope = self.backbone.rope_kwargs(inputs['video_grid_thw'], inputs.get('second_per_grid_ts'), use.present)
        kwargs = dict(input_ids=inputs['input_ids'], attention_mask=inputs['attention_mask'],
                      mm_token_type_ids=inputs['mm_token_type_ids'], **{k: v for k, v in rope.items()
                                                                         if v is not None})
        if vision is not None or self.fusion is not None:
            kwargs['mm_encoder_outputs'] = {'video': self.encode_vision(inputs, data_samples) if vision is None
                                            else vision}
        else:
            kwargs['pixel_values_videos'] = inputs['pixel_values_videos']
        self.backbone.hf_model.model.rope_deltas = None
        generated = self.backbone.generate(**kwargs, **{**self.generation_cfg, **overrides},
                                           eos_token_id=self.end_of_turn_id, pad_token_id=self.backbone.pad_token_id)
        return generated[:, inputs['input_ids'].shape[1]:]

    def completion_logps(self, inputs: dict, data_samples: dict, completion_ids: torch.Tensor,
                         completion_mask: torch.Tensor, temperature: float = 1.0, vision: Any = None,
                         suppress_token_ids: Sequence[int] = ()) -> torch.Tensor:
        """Log-probabilities of given answers to given prompts, by the forward the SFT loss uses.

        The sequence is the prompt exactly as generation saw it (left-padded, with geometry tokens iff the prompt
        batch has them) followed by the completion; vision (+ fusion) and the LLM run as in ``mode='loss'``.

        Args:
            inputs / data_samples: the prompt batch (data preprocessor, ``training=False``).
            completion_ids: ``(B, C)`` answer token ids (as :meth:`generate_ids` returns them).
            completion_mask: ``(B, C)`` 1 on the answer tokens (up to and including ``<|im_end|>``), 0 after.
            temperature: the logits are divided by it (the sampling distribution of ``generate``).
            vision: :meth:`encode_vision`'s output for this batch if already computed (e.g. once per prompt and
                repeated per completion with :func:`geokit.rl.rollout.repeat_vision_outputs`).
            suppress_token_ids: tokens whose logits are set to ``-inf`` first, as ``generate(suppress_tokens=...)``
                does, so the log-probs are those of the distribution that was sampled.
        Returns:
            ``(B, C)`` float32 ``log p(completion_t | prompt, completion_<t)``; entries where the mask is 0 are
            computed but meaningless.
        """
        prompt_len = inputs['input_ids'].shape[1]
        full = dict(inputs)
        full['input_ids'] = torch.cat([inputs['input_ids'], completion_ids], 1)
        full['attention_mask'] = torch.cat([inputs['attention_mask'],
                                            completion_mask.to(inputs['attention_mask'].dtype)], 1)
        token_types = inputs['mm_token_type_ids']
        full['mm_token_type_ids'] = torch.cat([token_types, completion_ids.new_zeros(completion_ids.shape,
                                                                                     dtype=token_types.dtype)], 1)
        hidden, _ = self._run(full, data_samples, self.geometry_token_use(full, 'generate'), vision=vision)
        states = hidden[:, prompt_len - 1:-1]                            # position t predicts token t + 1
        suppress = list(suppress_token_ids)
        rows = []
        for row_states, row_ids in zip(states, completion_ids):          # one row at a time: (C, V) logits at most
            logits = self.backbone.lm_logits(row_states).float() / temperature
            if suppress:
                logits = logits.index_fill(-1, torch.tensor(suppress, device=logits.device), float('-inf'))
            logps = logits.log_softmax(-1)
            rows.append(logps.gather(-1, row_ids[:, None]).squeeze(-1))
        return torch.stack(rows)

    @torch.no_grad()
    def predict(self, inputs: dict, data_samples: dict) -> list[dict]:
        """Generate the answer to every prompt (``generation_cfg``); with ``predict_geometry`` also the heads'
        geometry."""
        geometry = self.geometry_predictions(inputs, data_samples) if self.predict_geometry else None
        new_tokens = self.generate_ids(inputs, data_samples)
        texts = self.backbone.processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        outputs = [{'prediction': text.strip(), 'meta': meta} for text, meta in zip(texts, data_samples['meta'])]
        for output, sample_geometry in zip(outputs, geometry or []):
            output['geometry_pred'] = sample_geometry
        return outputs


def _select_samples(value: Any, keep: torch.Tensor) -> Any:
    """The samples ``keep`` ``(B,)`` of every tensor (leading dim ``B``) in a head's loss inputs."""
    if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == keep.shape[0]:
        return value[keep.to(value.device)]
    if isinstance(value, dict):
        return {key: _select_samples(item, keep) for key, item in value.items()}
    return value
