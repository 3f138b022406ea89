"""Structured pruning that physically removes channels (torch-pruning DependencyGraph).

Public API:

    prune_model(model, example_input, *, target_ratio=None | budget_params=None | budget_bytes=None |
                budget_latency_us=None, importance="magnitude"|"taylor", round_to=None,
                ignored_layers=None, global_pruning=False, bytes_fn=None,
                latency_runtime="onnxruntime", max_channel_ratio=0.95) -> PruneResult
        prunes in place to the smallest channel ratio meeting ONE budget; target_ratio is the kept
        fraction of the parameters (0.25 = 25% parameter budget); output heads are protected.
    PruningCallback(target_ratio=None | budget_params=None | budget_bytes=None | budget_latency_us=None,
                    importance="magnitude", schedule="oneshot"|"iterative", steps=1, start_epoch=0,
                    every_n_epochs=1, round_to=None, ignored_layers=None, module_attr="student",
                    example_input=None, ...)
        Lightning callback: prunes, rebuilds the optimizer(s), refreshes distiller taps, stores the
        pruned structure in every checkpoint.
    save_module(model, path) / load_module(path, trusted=())   # extra trusted module prefixes beyond torch.nn, compress
        structure + weights in a weights_only=True-loadable file; a pruned model reloads without the
        original architecture (see compress.serialize for the trust model).
    find_output_layers(model, example_input) -> list of head layers (protected by default)

Order of compression: prune -> fine-tune (with distillation) -> QAT -> export.  Pruning a
QAT-prepared model raises RuntimeError.
"""

from __future__ import annotations

from compress._lazy import lazy_getattr

# Lazy attributes (PEP 562): the timing worker loads modules through compress.serialize and must
# not pay for importing Lightning (the callback) or torch-pruning in every fresh process.
_LAZY = {
    "prune_model": "compress.prune.core",
    "PruneResult": "compress.prune.core",
    "find_output_layers": "compress.prune.core",
    "count_params": "compress.prune.core",
    "PruningCallback": "compress.prune.callback",
    "reshape_like": "compress.prune.callback",
    "save_module": "compress.serialize",
    "load_module": "compress.serialize",
    "module_from_checkpoint": "compress.serialize",
    "module_spec": "compress.serialize",
    "build_from_spec": "compress.serialize",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr("compress.prune", _LAZY)
