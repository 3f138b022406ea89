"""Artifacts that move between the server and an edge node: trained networks written by a recipe run.

A run's ``student.pt`` (``compress.run.save_student``) holds the network's weights and, in ``meta``,
the recipe spec it was built from (``class_path`` + ``init_args``).  At the receiving end:

* ``ArtifactTeacher(path)``: a frozen teacher rebuilt from that spec (through the recipe allow list, so
  a file cannot name a class a recipe could not) with the file's weights; ``expect`` names the class
  the recipe wants, so a file from another architecture is refused in ``__init__``.
* ``InitFromArtifact(path)``: a callback that starts the module's ``student`` from the file's weights
  (semi-centralized fine-tuning); keys and shapes are checked against the recipe's student.

Both read with ``torch.load(weights_only=True)``; every error is one line naming the file and the key.
A pruned student (shapes no longer those of its spec) cannot be rebuilt this way.
"""
from __future__ import annotations

import json
from pathlib import Path

from lightning.pytorch.callbacks import Callback
from torch import nn

from ..errors import UserError
from ..serialize import load_weights_only

__all__ = ["read_artifact", "check_state_fits", "ArtifactTeacher", "InitFromArtifact"]


def read_artifact(path: str | Path) -> tuple[dict, dict]:
    """``(state_dict, spec)`` of a ``student.pt`` written by a recipe run."""
    obj = load_weights_only(path, "artifact", " (run the step that writes it first)")
    state = obj.get("state_dict") if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise UserError(f"{path}: no 'state_dict' key (not a student.pt written by a recipe run)")
    try:
        spec = json.loads(obj.get("meta", "{}")).get("spec")
    except (TypeError, ValueError):
        spec = None
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise UserError(f"{path}: no architecture spec in its 'meta' key (not a student.pt written by a recipe run)")
    return state, spec


def check_state_fits(module: nn.Module, state: dict, path, what: str) -> None:
    """One line naming the first missing, unexpected or differently shaped key."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shaped = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or shaped:
        if shaped:
            k = shaped[0]
            detail = f"key '{k}' has shape {list(state[k].shape)} in the file, {list(own[k].shape)} in {what}"
        elif missing:
            detail = f"key '{missing[0]}' of {what} is missing ({len(missing)} missing)"
        else:
            detail = f"key '{extra[0]}' is not in {what} ({len(extra)} unexpected)"
        raise UserError(f"{path}: artifact from another architecture than {what}: {detail}")


class ArtifactTeacher(nn.Module):
    """A frozen network rebuilt from a ``student.pt`` (its recipe spec + weights)."""

    def __init__(self, path: str, expect: str | None = None):
        super().__init__()
        from ..recipe import instantiate

        state, spec = read_artifact(path)
        if expect is not None and spec["class_path"] != expect:
            raise UserError(f"{path}: artifact from another architecture: it holds {spec['class_path']}, "
                            f"the recipe expects {expect} (expect)")
        module = instantiate(spec, f"{path}: meta.spec")
        check_state_fits(module, state, path, spec["class_path"])
        module.load_state_dict(state)
        self.module = module.eval()
        self.path, self.spec = str(path), spec

    def forward(self, x):
        return self.module(x)


class InitFromArtifact(Callback):
    """Load ``path``'s weights into ``pl_module.student`` before training (at ``setup``, so a resumed run's
    checkpoint, restored later, wins)."""

    def __init__(self, path: str, attr: str = "student"):
        self.path, self.attr = path, attr
        read_artifact(path)   # a missing or unreadable file is reported when the recipe is built

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit":
            return
        student = getattr(pl_module, self.attr, None)
        if not isinstance(student, nn.Module):
            raise UserError(f"InitFromArtifact: the module has no network '{self.attr}' to initialise")
        state, spec = read_artifact(self.path)
        check_state_fits(student, state, self.path, f"the recipe's {type(student).__name__} (model.init_args.{self.attr})")
        student.load_state_dict(state)
