"""Generic RL (no task imports): env helpers, a collector, replay (uniform, prioritized), rollouts + GAE,
masked multi-branch policies, losses, and the algorithms DQN, PPO (+ expert JSD), SACD and DSACD, each a
LightningModule that ``python -m compress fit RECIPE`` runs and whose whole state is checkpointed."""
from .collector import Collector
from .dqn import DQN
from .dsacd import DSACD
from .envs import GymVectorEnv
from .evaluate import evaluate_policy
from .policies import Branches, MaskedCategorical, epsilon_greedy, greedy
from .ppo import PPO
from .prioritized import PrioritizedReplay
from .replay import ReplayBuffer
from .rollout import RolloutStorage, gae
from .sacd import SACD

__all__ = ["DQN", "PPO", "SACD", "DSACD", "Collector", "GymVectorEnv", "evaluate_policy", "Branches", "MaskedCategorical", "greedy",
           "epsilon_greedy", "ReplayBuffer", "PrioritizedReplay", "RolloutStorage", "gae"]
