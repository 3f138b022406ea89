"""``export_all``: every deployable artifact of a student in one call, with a manifest of exact sizes.

Meant for a recipe's ``export`` section and ``python -m compress export``: a float student gives fp32
ONNX (+ C if it is an MLP), a QAT-prepared student gives int8 ONNX (+ int8 C). ``manifest.json`` lists
each artifact's path (relative to ``out_dir``) and exact size in bytes, so tools need not re-derive them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from compress.export.layer_chain import UnsupportedLayerError, example_input_for

from compress.atomic import atomic_write_text
from compress.errors import UserError

FORMATS = ("onnx", "onnx-int8", "c", "c-int8")


def export_all(model: nn.Module, out_dir, example_input: torch.Tensor | None = None, *, name: str = "student",
               formats="auto", opset: int = 18, manifest_name: str | None = None) -> dict[str, Path]:
    """Export ``model`` to ``formats`` under ``out_dir``; returns {format: main file, "manifest": path}.

    ``formats``: "auto" (QAT-prepared -> onnx-int8 + c-int8, else onnx + c; C is skipped, and the
    reason recorded in the manifest, when the model is not an MLP) or a list from
    onnx | onnx-int8 | c | c-int8 (then every listed format must succeed).
    """
    from compress.export.c_export import export_c
    from compress.export.onnx_export import export_onnx
    from compress.quant.fake_quant import is_qat_prepared
    from compress.export.onnx_int8 import export_onnx_int8

    auto = formats == "auto"
    if auto:
        formats = ["onnx-int8", "c-int8"] if is_qat_prepared(model) else ["onnx", "c"]
    elif isinstance(formats, str):
        formats = [formats]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UserError(f"export_all: unknown formats {unknown}; choose from {', '.join(FORMATS)}")
    if example_input is None:
        example_input = example_input_for(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for fmt in formats:
        if fmt == "onnx":
            paths[fmt] = export_onnx(model, example_input, out / f"{name}.onnx", opset=opset)
        elif fmt == "onnx-int8":
            paths[fmt] = export_onnx_int8(model, example_input, out / f"{name}_int8.onnx", opset=opset)
        else:
            int8 = fmt == "c-int8"
            try:
                files = export_c(model, out / ("c_int8" if int8 else "c"), name=name, int8=int8,
                                 example_input=example_input[:1])
            except UnsupportedLayerError as e:
                if not auto:
                    raise
                skipped[fmt] = str(e)
                continue
            paths[fmt] = files["c"]
            paths[fmt + ":h"] = files["h"]
            paths[fmt + ":harness"] = files["harness"]
    manifest = {
        "name": name,
        "artifacts": {k: {"path": str(p.relative_to(out)), "bytes": p.stat().st_size} for k, p in paths.items()},
        "skipped": skipped,
    }
    mpath = atomic_write_text(out / (manifest_name or "manifest.json"), json.dumps(manifest, indent=2) + "\n")
    paths["manifest"] = mpath
    return paths
