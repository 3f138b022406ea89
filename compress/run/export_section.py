"""After training: the recipe's ``export`` section — write the deployable artifacts, profile them.

    export:
      onnx: true        # fp32 ONNX, one self-contained file
      c: true           # dependency-free C source (MLP students)
      onnx_int8: true   # int8 QDQ ONNX
      onnx_int8_weights_only: false   # true: int8 weights, float activations (ORT folds the weights at load;
                        #   faster than the QDQ graph for small MLPs, see compress.export.onnx_int8)
      c_int8: true      # int8 C
      int8: qat         # where the int8 scales come from: qat (a QATCallback trained them; the default when
                        #   the trainer has one) or ptq (post-training: calibrated on training batches)
      calibration_batches: 20   # ptq: how many batches calibrate the activation ranges (the data module's
                        #   calibration_batches(n) if it has one, else its first n training batches)
      profile: true     # params, MACs, exact bytes, latency p50/p99 per runtime -> profile.json
      input_shape: [1, 16]   # optional; default: one sample of the data module
      runtimes: [onnxruntime, c-export]   # optional subset for profiling
      dir: runs/x/export     # optional; default <run_dir>/export

Artifacts are checked against PyTorch before they are written (``compress.export``).  The profile is of
the artifacts as deployed: batch 1, one thread, a fresh process per runtime.  Returns
``{"artifacts": {format: path}, "profile": {...}}``, which ``after_fit`` hooks receive as ``exported``.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_write_text
from ..batch import batch_input
from ..errors import UserError

__all__ = ["export_student", "example_input", "calibration_batches"]


def _train_loader(datamodule):
    datamodule.setup("fit")
    return datamodule.train_dataloader()


def example_input(student: nn.Module, datamodule, cfg: dict) -> torch.Tensor:
    if cfg.get("input_shape"):
        shape = cfg["input_shape"]
        if not all(isinstance(d, int) and d > 0 for d in shape):
            raise UserError(f"export.input_shape must be positive integers, got {shape}")
        return torch.randn(*shape)
    if datamodule is not None:
        from lightning.pytorch import LightningDataModule

        if hasattr(datamodule, "calibration_batches"):  # data the module already holds (no new rollout)
            return torch.as_tensor(datamodule.calibration_batches(1)[0])[:1].float()
        datamodule.setup("fit")
        has_val = type(datamodule).val_dataloader is not LightningDataModule.val_dataloader
        loader = (datamodule.val_dataloader() if has_val else None) or datamodule.train_dataloader()
        return batch_input(next(iter(loader)))[:1].float()
    raise UserError("export needs export.input_shape (no data module to take an example from)")


def calibration_batches(datamodule, n: int):
    """``n`` input batches for post-training int8 calibration: the data module's own
    ``calibration_batches(n)`` when it has one (e.g. states a rollout data module already holds, so that
    calibrating does not roll out again), else the inputs of its first ``n`` training batches."""
    if datamodule is None:
        raise UserError("export.int8: ptq calibrates on training batches and needs the recipe's data section")
    if hasattr(datamodule, "calibration_batches"):
        out = [torch.as_tensor(b).float() for b in datamodule.calibration_batches(n)]
        if not out:
            raise UserError(f"export.int8: ptq: {type(datamodule).__name__}.calibration_batches gave no batch")
        return out
    out = []
    for batch in _train_loader(datamodule):
        out.append(batch_input(batch).float())
        if len(out) >= n:
            break
    if not out:
        raise UserError("export.int8: ptq found no training batch to calibrate on")
    return out


def _int8_student(student: nn.Module, datamodule, cfg: dict, qat: bool) -> nn.Module:
    mode = cfg.get("int8", "qat" if qat else None)
    if mode == "qat":
        if not qat:
            raise UserError("export.int8 is 'qat' but the student is not QAT-trained: add compress.quant.QATCallback "
                            "to trainer.callbacks, or use export.int8: ptq (post-training calibration)")
        return student
    if mode != "ptq":
        raise UserError("int8 artifacts need int8 scales: train with compress.quant.QATCallback, or set "
                        "export.int8: ptq (calibrated on training batches)")
    from ..quant import calibrate, prepare_qat

    q = prepare_qat(copy.deepcopy(student).eval())
    batches = calibration_batches(datamodule, int(cfg.get("calibration_batches", 20)))
    calibrate(q, batches)
    source = "the data module's calibration states" if hasattr(datamodule, "calibration_batches") else "training batches"
    print(f"[compress] post-training int8: calibrated on {len(batches)} batches ({sum(len(b) for b in batches):,} "
          f"inputs) of {source}", flush=True)
    return q


def export_student(student: nn.Module, datamodule, cfg: dict, run_dir: str | Path) -> dict:
    from ..export import export_all
    from ..quant import is_qat_prepared

    run_dir = Path(run_dir)
    out = Path(cfg.get("dir") or run_dir / "export")
    student = student.eval()
    x = example_input(student, datamodule, cfg)
    qat = is_qat_prepared(student)
    fp32 = [fmt for key, fmt in (("onnx", "onnx"), ("c", "c")) if cfg.get(key)]
    int8 = [fmt for key, fmt in (("onnx_int8", "onnx-int8"), ("c_int8", "c-int8")) if cfg.get(key)]
    if qat and fp32:
        print("[compress] the student is QAT-prepared: exporting int8 artifacts only", flush=True)
        int8, fp32 = int8 or ["onnx-int8"], []
    result: dict = {"artifacts": {}}
    if fp32:
        paths = export_all(student, out, x, formats=fp32)
        result["artifacts"].update({k: str(v) for k, v in paths.items() if k != "manifest"})
    deployed = student
    weights_only = bool(cfg.get("onnx_int8_weights_only"))
    if int8:
        deployed = _int8_student(student, datamodule, cfg, qat)
        paths = export_all(deployed, out, x, formats=int8, manifest_name="manifest_int8.json" if fp32 else None,
                           onnx_int8_activations="float" if weights_only else "int8")
        result["artifacts"].update({k: str(v) for k, v in paths.items() if k != "manifest"})
    if fp32 or int8:
        print(f"[compress] exported {', '.join(fp32 + int8)} to {out}", flush=True)
    if cfg.get("profile"):
        from ..profile import profile_model

        int8_rt = ("onnxruntime-int8w" if weights_only else "onnxruntime-int8", "c-export-int8")
        runtimes = tuple(cfg.get("runtimes") or (() if qat else ("torch-eager", "onnxruntime", "c-export")) +
                         (int8_rt if int8 else ()))
        profiles = []
        fp32_rt = tuple(r for r in runtimes if r not in int8_rt)
        if fp32_rt:
            profiles.append(profile_model(student, x, workdir=out / "profile", runtimes=fp32_rt))
        if int8 and any(r in int8_rt for r in runtimes):
            profiles.append(profile_model(deployed, x, workdir=out / "profile_int8",
                                          runtimes=tuple(r for r in runtimes if r in int8_rt)))
        merged = json.loads(profiles[0].to_json())
        for extra in profiles[1:]:
            more = json.loads(extra.to_json())
            for key in ("bytes", "latency", "errors"):
                merged.setdefault(key, {}).update(more.get(key) or {})
        atomic_write_text(out / "profile.json", json.dumps(merged, indent=2))
        for p in profiles:
            print(p.table(), flush=True)
        result["profile"] = merged
    return result
