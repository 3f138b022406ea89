"""QATCallback: start quantization-aware training at a chosen epoch of a Lightning run.

Design decisions:

* The student is swapped to QAT layers *in place* at the start of ``start_epoch`` (weights kept), then the
  optimizer(s) are rebuilt with ``compress.optim.rebuild_optimizers`` so they hold exactly the module's
  current parameters.  Our QAT layers reuse the float Parameter objects, so Adam moments are carried
  over for every parameter, and the learning rate and LR schedule continue where they were (a cosine
  schedule does not restart at QAT).
* Observers can be frozen at ``freeze_observers_epoch`` so scales stop moving for the last epochs.
* Resume: a checkpoint written after QAT started holds observer buffers; the callback hooks the
  module's ``on_load_checkpoint`` (called after the checkpoint is read, before its state_dict is loaded)
  and prepares the student first, so ``trainer.fit(..., ckpt_path=...)`` resumes a QAT run.
* Order (prune -> fine-tune -> QAT) is enforced by the pruning side, which refuses a QAT-prepared model
  (see ``is_qat_prepared``).
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from compress.optim import rebuild_optimizers
from compress.quant.fake_quant import freeze_observers, is_qat_prepared, prepare_qat

from compress.errors import UserError


class QATCallback(pl.Callback):
    """Prepare ``pl_module.<module_attr>`` for QAT at ``start_epoch``; optionally freeze observers later.

    Args:
        start_epoch: first epoch (0-based) trained with fake quantization.
        freeze_observers_epoch: from this epoch on the activation ranges are frozen (None: never).
        module_attr: attribute of the LightningModule holding the student; None or "" = the whole module.
        skip: module paths inside the student to keep in float (passed to ``prepare_qat``).
        quantize_output: quantize the last layer's output (int8 in, int8 out), see ``prepare_qat``.
    """

    def __init__(self, start_epoch: int = 0, freeze_observers_epoch: int | None = None,
                 module_attr: str | None = "student", skip: tuple[str, ...] | list[str] = (),
                 quantize_output: bool = True) -> None:
        super().__init__()
        if not isinstance(start_epoch, int) or start_epoch < 0:
            raise UserError(f"QATCallback: start_epoch must be an int >= 0, got {start_epoch!r}")
        if freeze_observers_epoch is not None and (
                not isinstance(freeze_observers_epoch, int) or freeze_observers_epoch < start_epoch):
            raise UserError("QATCallback: freeze_observers_epoch must be an int >= start_epoch "
                             f"({start_epoch}), got {freeze_observers_epoch!r}")
        self.start_epoch = start_epoch
        self.freeze_observers_epoch = freeze_observers_epoch
        self.module_attr = module_attr
        self.skip = tuple(skip)
        self.quantize_output = quantize_output

    def _target(self, pl_module: pl.LightningModule) -> torch.nn.Module:
        if not self.module_attr:
            return pl_module
        if not hasattr(pl_module, self.module_attr):
            raise UserError(f"QATCallback: {type(pl_module).__name__} has no attribute "
                             f"module_attr={self.module_attr!r} (the student to quantize)")
        target = getattr(pl_module, self.module_attr)
        if not isinstance(target, torch.nn.Module):
            raise UserError(f"QATCallback: {type(pl_module).__name__}.{self.module_attr} is "
                            f"{type(target).__name__}, not an nn.Module")
        return target

    def _prepare(self, pl_module: pl.LightningModule) -> bool:
        target = self._target(pl_module)
        if is_qat_prepared(target):
            return False
        prepare_qat(target, skip=self.skip, quantize_output=self.quantize_output)
        return True

    # -- resume: prepare before Lightning restores a QAT checkpoint -------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Wrap ``pl_module.on_load_checkpoint`` (the one hook Lightning calls between reading a checkpoint
        and loading its state_dict) so a checkpoint that holds QAT observers prepares the student first."""
        if getattr(pl_module, "_qat_callback_wrapped", False):
            return
        original = pl_module.on_load_checkpoint
        prefix = f"{self.module_attr}." if self.module_attr else ""

        def on_load_checkpoint(checkpoint):
            keys = checkpoint.get("state_dict", {}) if isinstance(checkpoint, dict) else {}
            if any(k.startswith(prefix) and ".input_quant." in k for k in keys):
                self._prepare(pl_module)
            return original(checkpoint)

        pl_module.on_load_checkpoint = on_load_checkpoint
        pl_module._qat_callback_wrapped = True

    # -- training --------------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if epoch >= self.start_epoch and self._prepare(pl_module):
            rebuild_optimizers(trainer)
        if self.freeze_observers_epoch is not None:
            freeze_observers(self._target(pl_module), epoch >= self.freeze_observers_epoch)
