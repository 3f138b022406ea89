"""Child processes (teacher training, search workers) end with their parent.

A child started by ``run_child`` / ``start_child`` gets ``COMPRESS_PARENT_PID``; when ``python -m
compress`` starts with it, ``bind_to_parent`` asks Linux to send it SIGTERM when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), even by SIGKILL, and exits at once if the parent is already gone.  So
a killed run leaves no orphan training in the background.  Elsewhere (not Linux) it does nothing.
``process_pool`` gives the same to the workers of a ``ProcessPoolExecutor`` (the benchmarks' ``--jobs``).
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

__all__ = ["bind_to_parent", "start_child", "run_child", "child_env", "process_pool"]

_PR_SET_PDEATHSIG = 1


def bind_to_parent() -> None:
    parent = os.environ.get("COMPRESS_PARENT_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # the parent died before prctl took effect
        os._exit(128 + signal.SIGTERM)


def child_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["COMPRESS_PARENT_PID"] = str(os.getpid())
    env.update(extra or {})
    return env


def start_child(cmd: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=child_env(env), **kwargs)


def run_child(cmd: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Run ``cmd`` to the end; on any exception here (e.g. ``RunInterrupted``) the child is terminated."""
    proc = start_child(cmd, env=env, **kwargs)
    try:
        proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    return proc


def _pool_worker_init(extra) -> None:
    bind_to_parent()
    if extra is not None:
        extra()


def process_pool(workers: int, initializer=None):
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes that end with this one (killed by any
    signal, even SIGKILL: ``bind_to_parent``); ``initializer`` (picklable) then runs in each worker."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    os.environ["COMPRESS_PARENT_PID"] = str(os.getpid())     # the spawned workers inherit it
    return ProcessPoolExecutor(int(workers), mp_context=mp.get_context("spawn"), initializer=_pool_worker_init,
                               initargs=(initializer,))
