"""RL loss functions, one family per file, each checked against hand-computed values in tests/test_rl_losses.py."""
from .dqn import double_dqn_target, q_taken
from .jsd import expert_jsd
from .ppo import ppo_clip_loss, ppo_value_loss
from .quantile import quantile_huber_loss, quantile_midpoints
from .sac import sac_actor_loss, sac_alpha_loss, sac_soft_value, target_entropy

__all__ = ["double_dqn_target", "q_taken", "expert_jsd", "ppo_clip_loss", "ppo_value_loss", "quantile_huber_loss",
           "quantile_midpoints", "sac_actor_loss", "sac_alpha_loss", "sac_soft_value", "target_entropy"]
