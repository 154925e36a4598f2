"""Group-relative advantages (GRPO) and the zero-variance group filter (DAPO).

Completions are laid out group by group: rows ``g * G ... g * G + G - 1`` of a ``(B * G,)`` tensor are the ``G``
completions of prompt ``g`` (what :func:`geokit.rl.rollout.repeat_batch` produces).
"""
from __future__ import annotations

import torch

SCALE_MODES = ('group', 'batch', 'none')


def group_reward_std(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Unbiased standard deviation of the rewards within each group, repeated to ``(B * G,)``."""
    grouped = _grouped(rewards, group_size)
    if group_size == 1:
        return torch.zeros_like(rewards)
    return grouped.std(dim=1, unbiased=True).repeat_interleave(group_size)


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = 'group', eps: float = 1e-4
                     ) -> torch.Tensor:
    """``A_i = (r_i - mean(group)) / (std + eps)``, GRPO's group-normalised advantage.

    Args:
        rewards: ``(B * G,)`` total reward of each completion, grouped as in the module docstring.
        group_size: ``G``, completions per prompt.
        scale: ``'group'`` divides by the group's std (GRPO, DeepSeekMath); ``'batch'`` by the std of the whole
            batch; ``'none'`` only centres (Dr. GRPO). Named as TRL's ``scale_rewards``.
        eps: added to the std (TRL's ``1e-4``), so an all-equal group gets advantage 0, not NaN.
    Returns:
        ``(B * G,)`` advantages (float32).
    """
    if scale not in SCALE_MODES:
        raise ValueError(f'scale={scale!r}; choose one of {SCALE_MODES} (model.grpo.scale_rewards).')
    rewards = rewards.float()
    mean = _grouped(rewards, group_size).mean(dim=1).repeat_interleave(group_size)
    advantages = rewards - mean
    if scale == 'group':
        advantages = advantages / (group_reward_std(rewards, group_size) + eps)
    elif scale == 'batch':
        std = rewards.std(unbiased=True) if rewards.numel() > 1 else rewards.new_zeros(())
        advantages = advantages / (std + eps)
    return advantages


def nonzero_variance_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """``(B * G,)`` bool, False for the completions of groups whose rewards are all equal (DAPO's filter: such a
    group has zero advantage everywhere, so it only dilutes the loss)."""
    grouped = _grouped(rewards, group_size)
    varied = (grouped != grouped[:, :1]).any(dim=1)
    return varied.repeat_interleave(group_size)


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f'rewards must be (B * G,) with G={group_size} dividing its length; got shape '
                         f'{tuple(rewards.shape)}.')
    return rewards.view(-1, group_size)
