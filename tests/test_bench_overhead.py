"""tools/bench_overhead.py runs and prints its JSON contract (its numbers are for the benchmark, not tests)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_overhead_prints_its_contract():
    r = subprocess.run([sys.executable, "tools/bench_overhead.py", "--steps", "20", "--repeats", "1", "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("lightning_over_plain", "bare_lightning_over_plain", "lightning_fixed_cost_ms_per_step",
                "break_even_plain_step_ms", "ms_per_step_plain"):
        assert isinstance(out[key], float), key
    assert out["lightning_over_plain"] > 0 and out["ms_per_step_plain"] > 0
    assert out["steps"] == 20 and out["batch_size"] == 32
