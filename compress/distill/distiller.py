"""The ``Distiller``: a plain ``nn.Module`` that turns (batch, student output) into a KD loss.

It owns the knowledge terms (and their trainable connectors), the student/teacher taps, the frozen
teachers, multi-teacher routing/combination and the optional teacher-output cache.  It never runs
the student: the caller does (so any ``training_step`` can use it), and the student's taps record
what they saw during that forward pass::

    out = student(x)
    loss, logs = distiller(batch, out, progress=step / total_steps)

Multi-teacher combination (``combine``):

* ``"route"``: each sample goes to the teacher named by its integer ``batch[route_key]`` (e.g. the
  scenario id in multi-policy distillation).  Each teacher runs only on its own samples.
* ``"mean"``: the mean of all teachers' outputs.
* ``"weighted"``: ``sum_k w_k * out_k`` with ``teacher_weights`` normalised to sum to one.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..batch import batch_input
from .cache import TeacherCache
from .taps import Tap
from .teachers import TeacherHandle, fingerprint
from .terms.base import Term

from compress.errors import UserError

__all__ = ["Distiller", "batch_input"]

TeacherSpec = nn.Module | Callable | str | Mapping[str, Any] | Sequence[Any] | None


def _resolve_teacher(name: str, spec: Any):
    if isinstance(spec, str):
        if spec.endswith((".yaml", ".yml")):
            from .recipe_teacher import RecipeTeacher
            return RecipeTeacher(spec)
        if spec.endswith(".pt2"):
            from pathlib import Path
            if not Path(spec).is_file():
                raise UserError(f"teacher '{name}': exported program not found: {spec}")
            return torch.export.load(spec).module()
        raise UserError(f"teacher '{name}': a bare path '{spec}' has no architecture; use "
                         "compress.distill.Checkpoint(module, path), a .pt2 exported program, or a recipe .yaml")
    return spec


class Distiller(nn.Module):
    def __init__(self, teachers: TeacherSpec = None, terms: Sequence[Term] | Mapping[str, Term] = (),
                 input_key: str = "x", route_key: str | None = None, combine: str = "route",
                 teacher_weights: Sequence[float] | None = None, cache: bool | str = False,
                 index_key: str = "index"):
        super().__init__()
        if combine not in ("route", "mean", "weighted"):
            raise UserError(f"combine must be 'route', 'mean' or 'weighted', got '{combine}'")
        self.input_key, self.route_key, self.combine, self.index_key = input_key, route_key, combine, index_key
        if isinstance(terms, Mapping):
            for name, term in terms.items():
                term.term_name = name
            terms = list(terms.values())
        terms = list(terms)
        for t in terms:
            if not isinstance(t, Term):
                raise UserError(f"terms must be knowledge terms (compress.distill.terms.*), got {type(t).__name__}")
        names = [t.term_name for t in terms]
        for i, t in enumerate(terms):  # make names unique for logging
            if names.count(t.term_name) > 1:
                t.term_name = f"{t.term_name}{i}"
        self.terms = nn.ModuleList(terms)
        self._teachers: dict[str, TeacherHandle] = {}
        self._teacher_taps: dict[tuple[str, str], Tap] = {}
        self._student_taps: dict[str, Tap] = {}
        self._cache_keyed = False
        object.__setattr__(self, "_student", None)
        if teachers is not None:
            if isinstance(teachers, Mapping):
                items = list(teachers.items())
            elif isinstance(teachers, (list, tuple)):
                items = [(f"teacher{i}", t) for i, t in enumerate(teachers)]
            else:
                items = [("teacher", teachers)]
            for name, spec in items:
                self.add_teacher(name, spec)
        self.teacher_weights = None
        if teacher_weights is not None:
            w = torch.as_tensor(teacher_weights, dtype=torch.float32)
            if len(w) != len(self._teachers) or (w < 0).any() or w.sum() <= 0:
                raise UserError(f"teacher_weights {list(teacher_weights)} must be {len(self._teachers)} "
                                 "non-negative numbers with a positive sum")
            self.teacher_weights = (w / w.sum()).tolist()
        if combine == "weighted" and self.teacher_weights is None and self._teachers:
            raise UserError("combine='weighted' needs teacher_weights")
        self.cache = None
        if cache:
            if any(t.teacher_tap for t in terms):
                raise UserError("the teacher-output cache cannot serve feature taps; disable cache or taps")
            self.cache = TeacherCache(cache if isinstance(cache, str) else None)
        self._attach_teacher_taps()

    # ------------------------------------------------------------------ teachers
    @property
    def teacher_names(self) -> list[str]:
        return list(self._teachers)

    def teacher(self, name: str):
        return self._teachers[name].teacher

    def add_teacher(self, name: str, spec) -> None:
        if name in self._teachers:
            raise UserError(f"duplicate teacher name '{name}'")
        self._teachers[name] = TeacherHandle(name, _resolve_teacher(name, spec))
        self._attach_teacher_taps()

    def _tap_teacher_name(self, term: Term) -> str:
        if not self._teachers:
            raise UserError(f"term '{term.term_name}' needs a teacher but the distiller has none")
        name = term.teacher or next(iter(self._teachers))
        if name not in self._teachers:
            raise UserError(f"term '{term.term_name}' names unknown teacher '{name}' "
                             f"(teachers: {', '.join(self._teachers)})")
        return name

    def _attach_teacher_taps(self) -> None:
        for term in self.terms:
            if term.teacher_tap and self._teachers:
                name = self._tap_teacher_name(term)
                key = (name, term.teacher_tap)
                if key not in self._teacher_taps:
                    module = self._teachers[name].module
                    if module is None:
                        raise UserError(f"term '{term.term_name}' taps teacher '{name}', which is not a module")
                    self._teacher_taps[key] = Tap(term.teacher_tap).attach(module, owner=f"teacher '{name}'")

    # ------------------------------------------------------------------ student
    def attach(self, student: nn.Module) -> "Distiller":
        """Register taps on the student (needed only for terms with ``student_tap``)."""
        object.__setattr__(self, "_student", student)  # not a submodule: keep it out of parameters()
        for tap in self._student_taps.values():
            tap.detach()
        self._student_taps = {}
        for term in self.terms:
            if term.student_tap and term.student_tap not in self._student_taps:
                self._student_taps[term.student_tap] = Tap(term.student_tap).attach(student, owner="student")
        return self

    def refresh(self, example_input: torch.Tensor | None = None) -> None:
        """Re-resolve all taps after pruning changed the student.  With ``example_input`` (a student
        input), connectors whose student width changed are rebuilt now, so that an optimizer built
        right after this call trains them."""
        if self._student is not None:
            self.attach(self._student)
        for tap in self._teacher_taps.values():
            tap.refresh()
        features = [t for t in self.terms if t.student_tap and hasattr(t, "resize")]
        if example_input is None or self._student is None or not features:
            return
        was_training = self._student.training
        with torch.no_grad():
            self._student.eval()
            self._student(example_input)
            self._student.train(was_training)
        feats = {path: tap.pop() for path, tap in self._student_taps.items()}
        for term in features:
            term.resize(feats[term.student_tap])

    # ------------------------------------------------------------------ teacher outputs
    def _run_teachers(self, x: torch.Tensor, batch) -> torch.Tensor:
        handles = list(self._teachers.values())
        if len(handles) == 1:
            return handles[0](x)
        if self.combine == "route":
            if self.route_key is None:
                raise UserError("several teachers with combine='route' need route_key (a batch key with the "
                                 "teacher index of each sample)")
            if not isinstance(batch, Mapping) or self.route_key not in batch:
                raise UserError(f"batch has no routing key '{self.route_key}'")
            route = batch[self.route_key].reshape(-1).long()
            if route.numel() != x.shape[0]:
                raise UserError(f"routing key '{self.route_key}' has {route.numel()} entries for a batch of "
                                 f"{x.shape[0]}")
            if route.min() < 0 or route.max() >= len(handles):
                raise UserError(f"routing key '{self.route_key}' holds teacher index {int(route.max())} outside "
                                 f"0..{len(handles) - 1}")
            out = None
            for k, handle in enumerate(handles):
                sel = (route == k).nonzero(as_tuple=True)[0]
                needs_full = any(key[0] == handle.name for key in self._teacher_taps)
                if len(sel) == 0 and not needs_full:
                    continue
                y = handle(x)[sel] if needs_full else handle(x[sel])
                if out is None:
                    out = torch.zeros((x.shape[0], *y.shape[1:]), dtype=y.dtype, device=y.device)
                out[sel] = y
            return out
        outs = [h(x) for h in handles]
        shapes = {tuple(o.shape) for o in outs}
        if len(shapes) > 1:
            raise UserError(f"teachers disagree on output shape: {sorted(shapes)}")
        if self.combine == "mean":
            return torch.stack(outs).mean(0)
        w = torch.tensor(self.teacher_weights, dtype=outs[0].dtype, device=outs[0].device)
        return torch.einsum("k,k...->...", w, torch.stack(outs))

    def teacher_output(self, batch) -> torch.Tensor:
        """The (combined) teacher output for a batch, through the cache when enabled."""
        x = batch_input(batch, self.input_key)
        if self.cache is None or not isinstance(batch, Mapping) or self.index_key not in batch:
            return self._run_teachers(x, batch)
        if not self._cache_keyed:
            self.cache.set_key("|".join(f"{n}:{fingerprint(h.teacher)}" for n, h in self._teachers.items())
                               + f"|{self.combine}")
            self._cache_keyed = True
        index = batch[self.index_key]
        hit, cached = self.cache.lookup(index, x)
        if bool(hit.all()):
            return cached.to(x.device)
        miss = (~hit).nonzero(as_tuple=True)[0]
        sub = {k: (v[miss] if isinstance(v, torch.Tensor) and v.shape[:1] == x.shape[:1] else v)
               for k, v in batch.items()}
        fresh = self._run_teachers(x[miss], sub)
        self.cache.store(index[miss], x[miss], fresh)
        out = torch.empty((x.shape[0], *fresh.shape[1:]), dtype=fresh.dtype, device=fresh.device)
        out[miss] = fresh
        if bool(hit.any()):
            out[hit.nonzero(as_tuple=True)[0].to(out.device)] = cached.to(out.device, out.dtype)
        return out

    @torch.no_grad()
    def prefill_cache(self, batches, chunk: int = 5000) -> int:
        """Fill the teacher-output cache from an iterable of dict batches (``input_key`` and ``index_key``),
        running the teachers on concatenated chunks of up to ``chunk`` samples: an algorithmic teacher
        (WMMSE) is slow per call and fast per batch.  Returns the number of samples seen."""
        if self.cache is None:
            raise UserError("prefill_cache: the distiller has no teacher-output cache (Distiller(cache=True))")
        pending: list = []
        seen = 0

        def flush():
            if pending:
                xs = torch.cat([b[self.input_key] for b in pending])
                idx = torch.cat([torch.as_tensor(b[self.index_key]).reshape(-1) for b in pending])
                self.teacher_output({self.input_key: xs, self.index_key: idx})
                pending.clear()
        for batch in batches:
            if not isinstance(batch, Mapping) or self.index_key not in batch:
                raise UserError(f"prefill_cache: batches must be mappings with '{self.input_key}' and "
                                f"'{self.index_key}' keys")
            pending.append(batch)
            seen += int(batch[self.input_key].shape[0])
            if sum(int(b[self.input_key].shape[0]) for b in pending) >= chunk:
                flush()
        flush()
        self.cache.save()
        return seen

    def reset_cache_key(self) -> None:
        """Force the cache to re-check teacher fingerprints (e.g. after a teacher was replaced)."""
        self._cache_keyed = False

    # ------------------------------------------------------------------ loss
    def forward(self, batch, student_out: torch.Tensor, progress: float = 0.0):
        needs_output = any(not t.teacher_tap for t in self.terms)
        teacher_out = self.teacher_output(batch) if needs_output and self._teachers else None
        if needs_output and teacher_out is None and len(self.terms):
            raise UserError("the distiller has terms but no teacher")
        teacher_feats = {}
        if self._teacher_taps:
            if teacher_out is None:  # taps need a forward pass of the tapped teachers
                x = batch_input(batch, self.input_key)
                for name in {k[0] for k in self._teacher_taps}:
                    self._teachers[name](x)
            teacher_feats = {key: tap.pop() for key, tap in self._teacher_taps.items()}
        student_feats = {path: tap.pop() for path, tap in self._student_taps.items()}
        total = student_out.new_zeros(())
        logs: dict[str, torch.Tensor] = {}
        for term in self.terms:
            if term.student_tap:
                if term.student_tap not in student_feats:
                    raise RuntimeError(f"term '{term.term_name}' taps the student but distiller.attach(student) "
                                       "was not called")
                s = student_feats[term.student_tap]
            else:
                s = student_out
            t = teacher_feats[(self._tap_teacher_name(term), term.teacher_tap)] if term.teacher_tap else teacher_out
            value = term(s, t, batch)
            w = term.weight(progress)
            total = total + w * value
            logs[f"kd_{term.term_name}"] = value.detach()
            logs[f"w_{term.term_name}"] = torch.tensor(w)
        return total, logs
