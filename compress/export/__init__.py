"""Deployable artifacts: ONNX (fp32 and int8) and dependency-free C source for MLP students.

Public API (stable; other parts of the framework, e.g. compress.profile and tools/bench_latency.py, call it):

    export_onnx(model, example_input, path, *, opset=18, dynamic_batch=True) -> Path
        fp32 ONNX, one self-contained file, checked with onnx.checker and round-tripped through ONNX Runtime.
    load_onnx(path) -> onnx.ModelProto            # ValueError "<path> is not an ONNX model"
    ort_session(path, threads=1) -> onnxruntime.InferenceSession   # 1 intra-op, 1 inter-op thread, sequential
    check_input(session_or_path, x) -> np.ndarray  # ValueError naming expected vs got shape
    run_onnx(session_or_path, x) -> np.ndarray     # check_input + run, first output
    export_onnx_int8(qat_model, example_input, path) -> Path      # QDQ int8 ONNX of a QAT-prepared model
    quantize_onnx_static(fp32_onnx, out, calibration) -> Path     # post-training static QDQ int8 of any ONNX graph
    export_c(model, out_dir, name="student", int8=False) -> dict  # {"c", "h", "harness"} -> Path
    compile_c(sources, out_path, *, shared=False, flags=("-O3", "-march=native")) -> Path
    UnsupportedLayerError (ValueError)            # one-line: layer path and type
    export_all(model, out_dir, example_input=None, *, name="student", formats="auto") -> dict
        every artifact (fp32 or int8 by whether the model is QAT-prepared) + manifest.json of exact bytes
"""

from compress.export.layer_chain import UnsupportedLayerError
from compress.export.onnx_export import check_input, export_onnx, load_onnx, ort_session, run_onnx
from compress.export.c_export import compile_c, export_c
from compress.export.artifacts import export_all
from compress.export.onnx_int8 import export_onnx_int8
from compress.export.ort_static import quantize_onnx_static


__all__ = [
    "export_onnx",
    "load_onnx",
    "ort_session",
    "check_input",
    "run_onnx",
    "export_onnx_int8",
    "quantize_onnx_static",
    "export_c",
    "compile_c",
    "UnsupportedLayerError",
    "export_all",
]
