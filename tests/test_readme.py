"""The README's Lightning example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _section_code(title: str) -> str:
    text = README.read_text()
    start = text.index(title)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_readme_lightning_example_runs(capsys):
    """The own-project example as written, with 1 epoch instead of 30 (its numbers are bench_kd's)."""
    code = _section_code("### Use the distiller in your own Lightning project")
    assert "EPOCHS = 30" in code
    namespace: dict = {}
    exec(compile(code.replace("EPOCHS = 30", "EPOCHS = 1"), "README-example", "exec"), namespace)
    out = capsys.readouterr().out
    accs = [float(line.split()[-1]) for line in out.splitlines() if line.startswith(("teacher", "MLP"))]
    assert len(accs) == 3 and all(0.1 < a <= 1.0 for a in accs), out   # every model trained past chance
    assert all(not p.requires_grad for p in namespace["teacher"].parameters())   # the teacher is frozen