"""Score any beam predictor -- a module, an exported ONNX file, or a callable -- on the same test windows.

``evaluate(policy, seeds)`` builds the data set of each seed (``BeamDataModule`` with the given
settings; the seed is the synthetic scene's seed), runs ``policy`` on its test windows (the last 30% of
the sequences) and returns top-k accuracies in percent per slot t0..t3, averaged over the seeds:
``{"top1": [t0, t1, t2, t3], "top2": [...], "top5": [...], "windows": n}``.  A data module may be
given instead of seeds (its test set is used).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from compress.metrics import SlotTopK

from .data import BeamDataModule

__all__ = ["evaluate", "as_predictor"]


def as_predictor(policy) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function ``x (B, T, F) -> logits (B, 4, C)`` for a module, an ``.onnx`` path or a callable."""
    if isinstance(policy, (str, Path)):
        path = Path(policy)
        if path.suffix != ".onnx":
            raise ValueError(f"evaluate: a path policy must be an .onnx file, got {path}")
        from compress.export import ort_session, run_onnx

        sess = ort_session(path)
        return lambda x: torch.from_numpy(run_onnx(sess, x))
    if isinstance(policy, torch.nn.Module):
        def run(x):
            was_training = policy.training
            policy.eval()
            try:
                with torch.no_grad():
                    return policy(x)
            finally:
                policy.train(was_training)
        return run
    if not callable(policy):
        raise TypeError(f"evaluate: policy must be an nn.Module, an .onnx path or a callable, "
                        f"got {type(policy).__name__}")
    return policy


def _score(predict, dm: BeamDataModule, ks: Sequence[int]) -> tuple[dict, int]:
    dm.setup("test")
    metric = SlotTopK(ks, slots=4)
    for batch in dm.test_dataloader():
        metric.update(torch.as_tensor(predict(batch["x"])), batch["y"])
    return {k: (100 * v).tolist() for k, v in metric.compute().items()}, int(metric.total[0])


def evaluate(policy, seeds: Sequence[int] = (0,), ks: Sequence[int] = (1, 2, 5),
             datamodule: BeamDataModule | None = None, **data_kw) -> dict:
    predict = as_predictor(policy)
    modules = [datamodule] if datamodule is not None else [BeamDataModule(seed=s, **data_kw) for s in seeds]
    scores, n = [], 0
    for dm in modules:
        s, windows = _score(predict, dm, ks)
        scores.append(s)
        n += windows
    out = {k: np.mean([s[k] for s in scores], axis=0).tolist() for k in scores[0]}
    out["windows"] = n
    return out
