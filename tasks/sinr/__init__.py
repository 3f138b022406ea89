"""SINR power control and D2D link scheduling by algorithm distillation (WMMSE / FPLinQ teachers)."""
from .data import ChannelSet, SINRDataModule, make_channels, teacher_for
from .evaluate import evaluate, pct_of, sum_rates
from .fplinq import FPLinQ, all_active, fplinq, greedy, random_schedule
from .module import MODES, NegSumRate, OnOffBCE, Reinforce, SINRModule, beta_schedule
from .students import PowerGNN, PowerMLP
from .wmmse import WMMSE, wmmse

__all__ = ["SINRModule", "SINRDataModule", "ChannelSet", "PowerMLP", "PowerGNN", "WMMSE", "wmmse", "FPLinQ",
           "fplinq", "greedy", "all_active", "random_schedule", "evaluate", "sum_rates", "pct_of",
           "make_channels", "teacher_for", "NegSumRate", "OnOffBCE", "Reinforce", "beta_schedule", "MODES"]
