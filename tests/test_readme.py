"""The README's Lightning example runs as written."""
import re

import numpy as np
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _section_code(title: str) -> str:
    text = README.read_text()
    start = text.index(title)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_readme_lightning_example_runs():
    code = _section_code("### Use the distiller in your own Lightning project")
    import torch
    from torch import nn

    torch.manual_seed(0)
    nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    fresh = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3))  # the example's student at init
    torch.manual_seed(0)
    namespace: dict = {}
    exec(compile(code, "README-example", "exec"), namespace)
    student = namespace["student"]
    assert not torch.equal(student[0].weight, fresh[0].weight), "the student did not train"
    assert all(not p.requires_grad for p in namespace["teacher"].parameters())


def test_readme_rl_example_runs():
    code = _section_code("## Reinforcement learning (compress.rl)")
    namespace: dict = {}
    exec(compile(code, "README-rl-example", "exec"), namespace)
    actions, info = namespace["actions"], namespace["info"]
    assert actions.shape == (16, 4)
    mask = info["action_mask"].reshape(16, 4, 5)
    assert mask[np.arange(16)[:, None], np.arange(4)[None, :], actions].all()   # only valid candidates
