"""The deployable link-adaptation student: an MLP from the 21 observation features to 16 MCS offsets."""
from __future__ import annotations

from typing import Sequence

from compress.models import MLP
from envs.link_adaptation import N_ACTIONS, OBS_DIM

__all__ = ["student_factory"]


def student_factory(hidden: Sequence[int] = (64, 64), activation: str = "relu") -> MLP:
    """Widths and activation are the architecture knobs a recipe or a search varies; the student acts
    greedily (argmax of its 16 outputs), like the DQN teachers."""
    return MLP(OBS_DIM, N_ACTIONS, hidden=list(hidden), activation=activation)
