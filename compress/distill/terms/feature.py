"""Feature knowledge (FitNets-style): a student tap, through a connector, matches a teacher tap."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..connectors import make_connector
from .base import Term

from compress.errors import UserError

__all__ = ["Feature"]


class Feature(Term):
    """MSE or cosine distance between ``connector(student_tap)`` and ``teacher_tap``.

    The connector is built on first use from the observed widths (last dim for ``linear``, channel
    dim for ``conv1x1``), or up front when ``student_dim``/``teacher_dim`` are given.  The
    ``DistillationModule`` runs one dry batch before building optimizers, so connector parameters
    are always trained.  After pruning changes the student width the connector is rebuilt.
    """

    def __init__(self, student_tap: str, teacher_tap: str, connector: str | None = "linear",
                 metric: str = "mse", student_dim: int | None = None, teacher_dim: int | None = None, **kw):
        super().__init__(student_tap=student_tap, teacher_tap=teacher_tap, **kw)
        if metric not in ("mse", "cosine"):
            raise UserError(f"Feature metric must be 'mse' or 'cosine', got '{metric}'")
        self.metric, self.connector_kind = metric, connector
        self.connector = None
        if student_dim is not None and teacher_dim is not None:
            self.connector = make_connector(connector, student_dim, teacher_dim)

    def _channel_dim(self, x: torch.Tensor) -> int:
        return 1 if self.connector_kind == "conv1x1" else -1

    def build(self, student: torch.Tensor, teacher: torch.Tensor) -> None:
        s_dim, t_dim = student.shape[self._channel_dim(student)], teacher.shape[self._channel_dim(teacher)]
        current = self.connector
        if current is not None:
            in_dim = getattr(current, "in_features", getattr(current, "in_channels", None))
            if in_dim in (None, s_dim):
                return
        self.connector = make_connector(self.connector_kind, s_dim, t_dim).to(student.device)

    @property
    def needs_build(self) -> bool:
        """True while the connector waits for a first batch to learn the feature widths."""
        return self.connector is None and self.connector_kind not in (None, "none", "identity")

    def build_from_state(self, state: dict, prefix: str) -> None:
        """Build the connector from a checkpoint's weights (before they are loaded into it)."""
        w = state.get(f"{prefix}connector.weight")
        if self.needs_build and w is not None:
            self.connector = make_connector(self.connector_kind, int(w.shape[1]), int(w.shape[0])).to(w.device)

    def resize(self, student: torch.Tensor) -> bool:
        """Rebuild the connector if the student feature's width changed (e.g. after pruning);
        the teacher width is kept.  Returns True when a new connector was made."""
        if self.connector is None or isinstance(self.connector, torch.nn.Identity):
            return False
        in_dim = getattr(self.connector, "in_features", getattr(self.connector, "in_channels", None))
        out_dim = getattr(self.connector, "out_features", getattr(self.connector, "out_channels", None))
        s_dim = student.shape[self._channel_dim(student)]
        if in_dim == s_dim:
            return False
        self.connector = make_connector(self.connector_kind, s_dim, out_dim).to(student.device)
        return True

    def loss(self, student, teacher, batch=None):
        self.build(student, teacher)
        mapped = self.connector(student)
        if mapped.shape != teacher.shape:
            raise UserError(
                f"term '{self.term_name}': connected student feature {tuple(mapped.shape)} does not match "
                f"teacher feature {tuple(teacher.shape)} (taps {self.student_tap} -> {self.teacher_tap})")
        if self.metric == "mse":
            return F.mse_loss(mapped, teacher)
        dim = self._channel_dim(mapped)
        return (1.0 - F.cosine_similarity(mapped, teacher, dim=dim)).mean()
