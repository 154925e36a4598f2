"""GRPO, the reinforcement-learning stage after SFT: rollouts, advantages, policy loss, rewards (``REWARDS``) and
the ``GRPOGeometricMLLM`` model that runs them under the SFT runner (see docs/grpo.md)."""
from geokit.rl.advantages import group_advantages, group_reward_std, nonzero_variance_groups
from geokit.rl.grpo_model import GRPOGeometricMLLM, GRPOSettings, PromptDataPreprocessor
from geokit.rl.policy_loss import LOSS_TYPES, GRPOPolicyLoss, grpo_policy_loss, k3_kl
from geokit.rl.rewards import (
    BaseReward,
    FormatReward,
    VSIAccuracyReward,
    build_rewards,
    extract_answer,
    trl_reward_funcs,
)
from geokit.rl.rollout import completion_mask, repeat_batch, repeat_vision_outputs, sampling_seed, seeded_sampling

__all__ = ['LOSS_TYPES', 'BaseReward', 'FormatReward', 'GRPOGeometricMLLM', 'GRPOPolicyLoss', 'GRPOSettings',
           'PromptDataPreprocessor', 'VSIAccuracyReward', 'build_rewards', 'completion_mask', 'extract_answer',
           'group_advantages', 'group_reward_std', 'grpo_policy_loss', 'k3_kl', 'nonzero_variance_groups',
           'repeat_batch', 'repeat_vision_outputs', 'sampling_seed', 'seeded_sampling', 'trl_reward_funcs']
