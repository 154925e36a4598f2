"""The clipped GRPO policy-gradient objective with an optional k3 KL term, and its thin registered module.

Per completion token ``t`` of completion ``i`` (all tensors ``(N, C)``: ``N`` completions, ``C`` completion
positions, ``mask`` 1 on real tokens)::

    ratio_it = exp(logp_it - old_logp_it)
    l_it     = -min(ratio_it * A_i, clip(ratio_it, 1 - clip_low, 1 + clip_high) * A_i)
             + beta * (exp(ref_logp_it - logp_it) - (ref_logp_it - logp_it) - 1)      # k3 KL estimator

aggregated over tokens by ``loss_type`` (the names and definitions of TRL's ``GRPOTrainer``):

* ``'grpo'``: mean over each sequence's tokens, then over sequences (sequence-level; DeepSeekMath GRPO);
* ``'bnpo'``: mean over all tokens of the batch (token-level);
* ``'dr_grpo'``: sum over all tokens / (N * ``max_completion_length``) (Dr. GRPO, no length bias);
* ``'dapo'``: sum over all tokens / (tokens of the *global* batch / world size): token-level over all ranks,
  since DDP averages the gradients of the ranks.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from geokit.registry import LOSSES

LOSS_TYPES = ('grpo', 'bnpo', 'dr_grpo', 'dapo')


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(policy || reference): ``exp(r - p) - (r - p) - 1`` (>= 0), shape of ``logps``."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


def global_token_count(mask: torch.Tensor) -> torch.Tensor:
    """Number of masked-in tokens summed over all ranks (this rank's count when not distributed)."""
    count = mask.sum().detach().float()
    if dist.is_available() and dist.is_initialized():
        count = count.clone()
        dist.all_reduce(count)
    return count


def grpo_policy_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor,
                     mask: torch.Tensor, ref_logps: torch.Tensor | None = None, beta: float = 0.0,
                     clip_low: float = 0.2, clip_high: float = 0.2, loss_type: str = 'grpo',
                     max_completion_length: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped GRPO loss (see the module docstring).

    Args:
        logps: ``(N, C)`` log-probabilities of the completion tokens under the policy being trained (with grad).
        old_logps: ``(N, C)`` the same under the policy that sampled them (no grad).
        advantages: ``(N,)`` or ``(N, C)``.
        mask: ``(N, C)`` 1 on completion tokens, 0 on padding (any dtype).
        ref_logps: ``(N, C)`` under the frozen reference; needed when ``beta > 0``.
        beta: weight of the k3 KL term.
        clip_low / clip_high: the clip range ``[1 - clip_low, 1 + clip_high]`` of the ratio (DAPO's
            clip-higher: ``clip_high > clip_low``).
        loss_type: token aggregation, one of :data:`LOSS_TYPES`.
        max_completion_length: the generation limit, needed by ``'dr_grpo'``.
    Returns:
        The scalar loss, and detached statistics: ``kl`` (mean per-token KL, when ``beta > 0``),
        ``clip_fraction`` (tokens whose ratio was clipped in the direction that stops the gradient),
        ``clip_fraction_low`` / ``clip_fraction_high``.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f'loss_type={loss_type!r}; choose one of {LOSS_TYPES}.')
    if beta != 0.0 and ref_logps is None:
        raise ValueError('beta > 0 needs the reference log-probabilities (ref_logps).')
    if loss_type == 'dr_grpo' and not max_completion_length:
        raise ValueError("loss_type='dr_grpo' divides by max_completion_length; pass it (the generation limit).")
    mask = mask.to(logps.dtype)
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    stats: dict[str, torch.Tensor] = {}
    if beta != 0.0:
        kl = k3_kl(logps, ref_logps)
        per_token = per_token + beta * kl
        stats['kl'] = _masked_mean(kl.detach(), mask)
    if loss_type == 'grpo':
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif loss_type == 'bnpo':
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    elif loss_type == 'dr_grpo':
        loss = (per_token * mask).sum() / (per_token.shape[0] * max_completion_length)
    else:
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        loss = (per_token * mask).sum() / (global_token_count(mask) / world).clamp(min=1.0)
    low = ((ratio < 1 - clip_low) & (advantages < 0)).to(mask.dtype)
    high = ((ratio > 1 + clip_high) & (advantages > 0)).to(mask.dtype)
    stats.update(clip_fraction=_masked_mean(torch.maximum(low, high).detach(), mask),
                 clip_fraction_low=_masked_mean(low.detach(), mask),
                 clip_fraction_high=_masked_mean(high.detach(), mask))
    return loss, stats


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


@LOSSES.register_module()
class GRPOPolicyLoss(nn.Module):
    """:func:`grpo_policy_loss` with its options from config.

    Args:
        clip_low / clip_high: ratio clip range ``[1 - clip_low, 1 + clip_high]`` (GRPO 0.2 / 0.2; VST and DAPO
            0.2 / 0.28).
        beta: k3 KL weight; 0 keeps no reference model.
        loss_type: ``'grpo'`` (sequence-level), ``'bnpo'``, ``'dr_grpo'``, ``'dapo'`` (token-level); see
            :mod:`geokit.rl.policy_loss`.
        loss_weight: factor on the loss.
    """

    def __init__(self, clip_low: float = 0.2, clip_high: float = 0.2, beta: float = 0.0, loss_type: str = 'grpo',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if loss_type not in LOSS_TYPES:
            raise ValueError(f'GRPOPolicyLoss loss_type={loss_type!r}; choose one of {LOSS_TYPES}.')
        if beta < 0 or clip_low < 0 or clip_high < 0:
            raise ValueError(f'GRPOPolicyLoss needs beta, clip_low, clip_high >= 0; got {beta}, {clip_low}, '
                             f'{clip_high}.')
        self.clip_low, self.clip_high, self.beta = float(clip_low), float(clip_high), float(beta)
        self.loss_type, self.loss_weight = loss_type, float(loss_weight)

    def forward(self, logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                ref_logps: torch.Tensor | None = None, max_completion_length: int | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, stats = grpo_policy_loss(logps, old_logps, advantages, mask, ref_logps=ref_logps, beta=self.beta,
                                       clip_low=self.clip_low, clip_high=self.clip_high, loss_type=self.loss_type,
                                       max_completion_length=max_completion_length)
        return self.loss_weight * loss, stats
