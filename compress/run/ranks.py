"""Which process of a distributed (DDP) run this is, before Lightning has set anything up.

Lightning's DDP launcher on one machine starts rank 1.. by re-running the same command line
(``python -m compress fit RECIPE ...``) with ``LOCAL_RANK`` / ``NODE_RANK`` / ``WORLD_SIZE`` set;
``torchrun`` sets ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` for every process; SLURM's ``srun`` sets
``SLURM_PROCID`` / ``SLURM_NTASKS``.  ``python -m compress fit`` reads them to let only the global
rank 0 own the run folder (lock, ``--fresh``, ``recipe.yaml``, ``student.pt``, export, ``after_fit``);
the other ranks only train (Lightning already writes checkpoints and logs from rank 0 only).
"""
from __future__ import annotations

import os

__all__ = ["launched_rank", "is_rank_zero_process"]


def _int(name: str) -> int | None:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def launched_rank() -> int:
    """The global rank the launcher gave this process (0 when not launched as one rank of many)."""
    rank = _int("RANK")
    if rank is not None:                                   # torchrun, Lightning's launcher on some paths
        return rank
    if (_int("SLURM_NTASKS") or 1) > 1 and _int("SLURM_PROCID") is not None:
        return _int("SLURM_PROCID")
    local, node = _int("LOCAL_RANK"), _int("NODE_RANK")    # Lightning's subprocess launcher
    if local is None and node is None:
        return 0
    return (node or 0) * 1000 + (local or 0)               # only zero-ness matters here


def is_rank_zero_process() -> bool:
    return launched_rank() == 0
