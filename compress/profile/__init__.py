"""Profile of a model or an exported artifact: params, MACs, exact bytes, latency p50/p99 as deployed.

Public API:

    profile_model(model, example_input, *, runtimes=DEFAULT_RUNTIMES, workdir=None, seconds=0.4,
                  repeats=5) -> Profile
    profile_artifact(path, input_shape=None, *, runtimes=None) -> Profile   # .onnx | C export dir/.c | .so
    Profile: dataclass with .params, .macs, .layers, .bytes, .latency, .errors; .table(), .to_json()
    measure_latency(model, example_input, *, runtime="onnxruntime") -> dict   # p50_us, p99_us, spread_us, ...
    RUNTIMES = ("torch-eager", "onnxruntime", "onnxruntime-int8", "c-export", "c-export-int8")
    main(argv)  # the `profile` command line (compress.profile.cli)

Latency is measured at batch 1 on one thread in a fresh process (compress.profile.worker for Python
runtimes, a generated C harness for C exports), after warm-up, in repeats of many samples.

The attributes are imported lazily (PEP 562) so that the timing worker, which is started once per
measurement, does not pay for importing torch when it times ONNX Runtime.
"""
from __future__ import annotations

from compress._lazy import lazy_getattr

_LAZY = {
    "Profile": "compress.profile.profile",
    "profile_model": "compress.profile.profile",
    "profile_artifact": "compress.profile.profile",
    "DEFAULT_RUNTIMES": "compress.profile.profile",
    "LayerStat": "compress.profile.counting",
    "count_layers": "compress.profile.counting",
    "count_totals": "compress.profile.counting",
    "measure_latency": "compress.profile.latency",
    "RUNTIMES": "compress.profile.latency",
    "main": "compress.profile.cli",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr("compress.profile", _LAZY)
