"""After training: export the student and profile the artifacts (a recipe's ``export`` section).

    export:
      onnx: true        # fp32 ONNX, one self-contained file
      c: true           # dependency-free C source (MLP students)
      onnx_int8: true   # int8 QDQ ONNX (needs a QAT-trained student: compress.quant.QATCallback)
      c_int8: true      # int8 C
      profile: true     # params, MACs, exact bytes, latency p50/p99 per runtime -> profile.json
      input_shape: [1, 16]   # optional; default: one sample of the data module
      runtimes: [onnxruntime, c-export]   # optional subset for profiling
      dir: runs/x/export     # optional; default <run_dir>/export

Artifacts are checked against PyTorch before they are written (compress.export).  The profile is of
the artifacts as deployed: batch 1, one thread, a fresh process per runtime.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from compress.errors import UserError

__all__ = ["export_student", "example_input"]


def example_input(student: nn.Module, datamodule, cfg: dict) -> torch.Tensor:
    if cfg.get("input_shape"):
        shape = cfg["input_shape"]
        if not all(isinstance(d, int) and d > 0 for d in shape):
            raise UserError(f"export.input_shape must be positive integers, got {shape}")
        return torch.randn(*shape)
    if datamodule is not None:
        from .distill import batch_input

        datamodule.setup("fit")
        loader = datamodule.val_dataloader() or datamodule.train_dataloader()
        x = batch_input(next(iter(loader)))
        return x[:1].float()
    raise UserError("export needs export.input_shape (no data module to take an example from)")


def export_student(student: nn.Module, datamodule, cfg: dict, run_dir: str | Path) -> dict:
    from .export import export_all
    from .quant import is_qat_prepared

    run_dir = Path(run_dir)
    out = Path(cfg.get("dir") or run_dir / "export")
    student = student.eval()
    x = example_input(student, datamodule, cfg)
    wanted = [fmt for key, fmt in (("onnx", "onnx"), ("c", "c"), ("onnx_int8", "onnx-int8"), ("c_int8", "c-int8"))
              if cfg.get(key)]
    qat = is_qat_prepared(student)
    int8 = [f for f in wanted if f.endswith("int8")]
    if int8 and not qat:
        raise UserError(f"export.{int8[0].replace('-', '_')} needs a QAT-trained student: add "
                         "compress.quant.QATCallback to trainer.callbacks")
    if qat and any(f in ("onnx", "c") for f in wanted):
        wanted = [f for f in wanted if f.endswith("int8")] or ["onnx-int8"]
        print("[compress] the student is QAT-prepared: exporting int8 artifacts only", flush=True)
    result: dict = {}
    if wanted:
        paths = export_all(student, out, x, formats=wanted)
        result["artifacts"] = {k: str(v) for k, v in paths.items()}
        print(f"[compress] exported {', '.join(wanted)} to {out}", flush=True)
    if cfg.get("profile"):
        from .profile import profile_model

        if cfg.get("runtimes"):
            kwargs = {"runtimes": tuple(cfg["runtimes"])}
        elif qat:  # a QAT student deploys as int8; fp32 runtimes do not apply
            kwargs = {"runtimes": ("onnxruntime-int8", "c-export-int8")}
        else:
            kwargs = {"runtimes": ("torch-eager", "onnxruntime", "c-export")}
        prof = profile_model(student, x, workdir=out / "profile", **kwargs)
        out.mkdir(parents=True, exist_ok=True)
        (out / "profile.json").write_text(prof.to_json(indent=2))
        print(prof.table(), flush=True)
        result["profile"] = json.loads(prof.to_json())
    return result
