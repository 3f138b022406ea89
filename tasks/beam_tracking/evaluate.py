"""Score any beam predictor -- a module, an exported ONNX file, or a callable -- on the same test windows.

``evaluate(policy, seeds)`` builds the data set of each seed (``BeamDataModule`` with the given
settings; the seed is the synthetic scene's seed), runs ``policy`` on its test windows (the last 30% of
the sequences) and returns top-k accuracies in percent per slot t0..t3, averaged over the seeds:
``{"top1": [t0, t1, t2, t3], "top2": [...], "top5": [...], "windows": n}``.  A data module may be
given instead of seeds (its test set is used).

``BeamEvaluator`` is the same scoring as the task contract's evaluator (``compress.task``): bound to a
run's data module it scores on that module's test windows, otherwise on each seed's data, and returns one
group per slot, ``{"t0": {"top1": .., "top2": .., "top5": ..}, ..., "t3": {...}}``, so
``compress.evaluate.EvaluateDeployed`` tabulates policies x slots and ``ClosedLoopMetric`` logs the
mean over the slots (``val/top2``) for a search.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from compress.metrics import SlotTopK

from .data import BeamDataModule

__all__ = ["evaluate", "as_predictor", "BeamEvaluator"]


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


class BeamEvaluator:
    """Task-contract evaluator: ``evaluator(policy, seeds) -> {slot: {topk: percent}}`` (see the module doc).

    Args:
        ks: the k of the top-k accuracies.
        **data_kw: ``BeamDataModule`` settings for the per-seed data when no data module is bound.
    """

    def __init__(self, ks: Sequence[int] = (1, 2, 5), **data_kw):
        if not ks or any(int(k) < 1 for k in ks):
            raise ValueError(f"BeamEvaluator: ks must be positive integers, got {list(ks)}")
        self.ks, self.data_kw, self.datamodule = [int(k) for k in ks], data_kw, None

    def bind(self, datamodule) -> None:
        if not isinstance(datamodule, BeamDataModule):
            raise ValueError(f"BeamEvaluator: bind needs a BeamDataModule, got {type(datamodule).__name__}")
        self.datamodule = datamodule

    def __call__(self, policy, seeds: Sequence[int] = (0,)) -> dict:
        res = evaluate(policy, seeds, self.ks, datamodule=self.datamodule, **self.data_kw)
        return {f"t{i}": {f"top{k}": res[f"top{k}"][i] for k in self.ks} for i in range(len(res[f"top{self.ks[0]}"]))}
