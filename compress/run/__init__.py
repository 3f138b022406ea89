"""Running recipes safely: the run folder, atomic checkpoints, resume, signals, guards.

``run(command, prepared)`` runs a ``compress.recipe.prepare``-d recipe; the pieces it uses
(``LastCheckpoint``, ``AtomicCheckpointIO``, ``NonFiniteGuard``, ``EpochSeeding``, ``RunFolder``) are
usable on their own in a user's Lightning project.
"""
from .checkpoints import AtomicCheckpointIO, LastCheckpoint, NonFiniteError, read_checkpoint
from .fit import RunResult, run, save_student, set_threads
from .folder import RunFolder
from .guards import NonFiniteGuard
from .seeding import EpochSeeding
from .signals import RunInterrupted

__all__ = ["AtomicCheckpointIO", "LastCheckpoint", "NonFiniteError", "read_checkpoint", "RunResult", "run",
           "save_student", "set_threads", "RunFolder", "NonFiniteGuard", "EpochSeeding", "RunInterrupted"]
