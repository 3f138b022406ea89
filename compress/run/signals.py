"""SIGINT / SIGTERM: stop cleanly, save what training did, say so in one line.

Outside training (set-up, export, evaluation) either signal raises ``RunInterrupted`` at once; the CLI
prints one line and exits with 128 + the signal number.  During training (``LastCheckpoint`` installs
``request_stop`` as the handler between ``on_train_start`` and ``on_train_end``) the first signal only
sets a flag: the current batch finishes, a checkpoint is written, then ``RunInterrupted`` ends the run.
A second signal aborts at once without saving.
"""
from __future__ import annotations

import signal

__all__ = ["RunInterrupted", "install_cli_handlers", "training_handlers", "stop_requested", "clear_stop"]

_STOP: dict = {"signum": None}


class RunInterrupted(Exception):
    """The run was stopped by a signal; ``saved`` names the checkpoint written (or None)."""

    def __init__(self, signum: int, message: str, saved: str | None = None):
        super().__init__(message)
        self.signum, self.saved = int(signum), saved

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _raise_now(signum, frame):
    raise RunInterrupted(signum, f"stopped by {_name(signum)}")


def install_cli_handlers() -> None:
    """SIGINT and SIGTERM raise ``RunInterrupted`` (instead of KeyboardInterrupt / termination)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_now)


def request_stop(signum, frame):
    if _STOP["signum"] is not None:  # second signal: give up at once
        raise RunInterrupted(signum, f"stopped by a second {_name(signum)} without saving")
    _STOP["signum"] = signum


def stop_requested() -> int | None:
    return _STOP["signum"]


def clear_stop() -> None:
    _STOP["signum"] = None


class training_handlers:
    """Context: ``request_stop`` handles SIGINT/SIGTERM; the previous handlers come back after."""

    def __enter__(self):
        clear_stop()
        self._old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in self._old:
            signal.signal(s, request_stop)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        return False
