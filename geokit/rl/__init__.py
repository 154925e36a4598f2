"""GRPO, the reinforcement-learning stage after SFT: rollouts, advantages, policy loss, rewards (``REWARDS``)."""
from geokit.rl.advantages import group_advantages, group_reward_std, nonzero_variance_groups
from geokit.rl.policy_loss import LOSS_TYPES, GRPOPolicyLoss, grpo_policy_loss, k3_kl
from geokit.rl.rewards import (
    BaseReward,
    FormatReward,
    VSIAccuracyReward,
    build_rewards,
    extract_answer,
    trl_reward_funcs,
)

__all__ = ['LOSS_TYPES', 'BaseReward', 'FormatReward', 'GRPOPolicyLoss', 'VSIAccuracyReward', 'build_rewards',
           'extract_answer', 'group_advantages', 'group_reward_std', 'grpo_policy_loss', 'k3_kl',
           'nonzero_variance_groups', 'trl_reward_funcs']
