"""geokit's GRPO loss and advantages against TRL's own ``GRPOTrainer`` code on identical tensors.

TRL's ``_compute_loss`` runs unchanged on a trainer object that holds only the attributes it reads; the model is a
stub whose forward returns the given per-token log-probabilities (TRL's fused-LM-head output), so TRL's
``_get_per_token_logps_and_entropies`` runs too.
"""
from __future__ import annotations

import contextlib
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
import trl.trainer.grpo_trainer as trl_grpo  # the dev extra installs trl: this test must not skip
import trl.trainer.utils as trl_utils
from torch import nn

from geokit.rl.advantages import group_advantages
from geokit.rl.policy_loss import grpo_policy_loss

N, P, C, G = 6, 3, 5, 3  # completions, prompt length, completion length, group size
MAX_COMPLETION = 7


class _LogProbModel(nn.Module):
    """Returns fixed completion log-probs at the completion positions, as TRL's fused LM head would."""

    def __init__(self, logps: torch.Tensor) -> None:
        super().__init__()
        self.logps = logps

    def forward(self, input_ids, attention_mask, labels=None, fused_lm_head=False, **kwargs):
        full = torch.zeros(input_ids.shape, dtype=self.logps.dtype)
        full = torch.cat([full[:, :-self.logps.shape[1]], self.logps], dim=1)
        return SimpleNamespace(log_probs=full, entropy=torch.zeros_like(full))


class _Accelerator:
    num_processes = 1
    is_main_process = True
    device = torch.device('cpu')

    def autocast(self):
        return contextlib.nullcontext()

    def reduce(self, tensor, reduction='sum'):
        return tensor

    def gather(self, tensor):
        return tensor

    gather_for_metrics = gather


def _trl_trainer(loss_type: str, beta: float, clip_low: float, clip_high: float):
    trainer = trl_grpo.GRPOTrainer.__new__(trl_grpo.GRPOTrainer)
    attributes = dict(
        loss_type=loss_type, beta=beta, epsilon_low=clip_low, epsilon_high=clip_high,
        importance_sampling_level='token', top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        use_vllm=False, vllm_importance_sampling_correction=False, aux_loss_enabled=False,
        _entropy_bonus_enabled=False, max_completion_length=MAX_COMPLETION, accelerator=_Accelerator(),
        _metrics={'train': defaultdict(list), 'eval': defaultdict(list)}, model=nn.Linear(1, 1),
        args=SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=1))
    for name, value in attributes.items():
        object.__setattr__(trainer, name, value)
    # transformers' Trainer exposes this as a plain attribute set during training
    object.__setattr__(trainer, 'current_gradient_accumulation_steps', 1)
    return trainer


def _tensors(seed: int):
    gen = torch.Generator().manual_seed(seed)
    logps = -torch.rand(N, C, generator=gen) * 2
    old = logps + 0.3 * torch.randn(N, C, generator=gen)        # ratios well outside [0.8, 1.28]
    ref = logps + 0.2 * torch.randn(N, C, generator=gen)
    lengths = torch.tensor([5, 3, 1, 4, 2, 5])
    mask = (torch.arange(C)[None] < lengths[:, None]).long()
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.2, 0.2, 0.9])
    return logps, old, ref, mask, rewards


def _trl_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """TRL's group normalisation ('sum_then_normalize', scale_rewards='group'), with TRL's own nanstd."""
    mean = torch.nanmean(rewards.view(-1, G), dim=1).repeat_interleave(G)
    std = trl_utils.nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G)
    return (rewards - mean) / (std + 1e-4)


def test_advantages_match_trl_group_normalisation():
    _, _, _, _, rewards = _tensors(0)
    torch.testing.assert_close(group_advantages(rewards, G, scale='group'), _trl_advantages(rewards))


@pytest.mark.parametrize('loss_type', ['grpo', 'bnpo', 'dr_grpo', 'dapo'])
@pytest.mark.parametrize('beta', [0.0, 0.04])
def test_loss_matches_trl_compute_loss(loss_type, beta):
    clip_low, clip_high = 0.2, 0.28
    logps, old, ref, mask, rewards = _tensors(1)
    advantages = group_advantages(rewards, G)
    policy_logps = logps.clone().requires_grad_(True)
    ours, stats = grpo_policy_loss(policy_logps, old, advantages, mask, ref_logps=ref, beta=beta,
                                   clip_low=clip_low, clip_high=clip_high, loss_type=loss_type,
                                   max_completion_length=MAX_COMPLETION)
    trl_logps = logps.clone().requires_grad_(True)
    trainer = _trl_trainer(loss_type, beta, clip_low, clip_high)
    inputs = dict(prompt_ids=torch.ones(N, P, dtype=torch.long), prompt_mask=torch.ones(N, P, dtype=torch.long),
                  completion_ids=torch.ones(N, C, dtype=torch.long), completion_mask=mask,
                  advantages=advantages, old_per_token_logps=old, num_items_in_batch=mask.sum())
    if beta:
        inputs['ref_per_token_logps'] = ref
    theirs = trainer._compute_loss(_LogProbModel(trl_logps), inputs)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(policy_logps.grad, trl_logps.grad, rtol=1e-6, atol=1e-7)
    metrics = trainer._metrics['train']
    assert stats['clip_fraction'].item() == pytest.approx(metrics['clip_ratio/region_mean'][-1], abs=1e-6)
    assert 0 < stats['clip_fraction'].item() < 1
    if beta:
        assert stats['kl'].item() == pytest.approx(metrics['kl'][-1], rel=1e-6)


def test_on_policy_ratio_is_one_and_loss_is_minus_mean_advantage():
    """num_iterations=1: old = logps.detach(), so the loss value is -mean(A) weighted by the aggregation."""
    logps, _, _, mask, rewards = _tensors(2)
    advantages = group_advantages(rewards, G)
    loss, stats = grpo_policy_loss(logps, logps, advantages, mask, loss_type='bnpo')
    expected = -(advantages[:, None] * mask).sum() / mask.sum()
    torch.testing.assert_close(loss, expected)
    assert stats['clip_fraction'].item() == 0.0
