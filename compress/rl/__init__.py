"""Generic RL trainers (LightningModules over vector-env rollouts); no task imports."""
from .dqn import DQN, ReplayBuffer, greedy_policy

__all__ = ["DQN", "ReplayBuffer", "greedy_policy"]
