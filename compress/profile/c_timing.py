"""C timing harness: times ``<name>_forward(const float *in, float *out)`` in a process of its own.

The harness is generated, compiled together with the exported (or hand-written) ``<name>.c`` and run
as its own process; it prints one JSON line with every sample, and the statistics are computed in
Python by the same code as for the other runtimes (stats.py), so all runtimes are summarized alike.

Design decisions
- ``clock_gettime(CLOCK_MONOTONIC)`` around ``calls_per_sample`` calls (calibrated so one sample is
  ~10 us: the clock costs ~20 ns), warm-up first, ``repeats`` blocks of samples.
- Each call's input depends on the previous call's output (``in[0]`` gets ``out[0] * 1e-30f``
  added, numerically nothing), so the CPU cannot overlap consecutive calls: we measure the latency
  of one decision, not the throughput of a pipelined loop.  The forward function lives in another
  translation unit (no LTO), so the compiler cannot inline it into the timing loop or drop it.
- ``forwards_per_call`` > 1 times K sequential forward passes on K different inputs as one call
  (e.g. 8 layers of one TTI for an actor that is run once per layer).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from compress.export.c_export import read_io_sizes  # noqa: F401 - re-exported: the profiler reads C exports' sizes
from compress.profile.stats import SAMPLE_TARGET_US, summarize


HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "%(header)s"

#ifndef NIN
#define NIN %(n_in)d
#endif
#ifndef NOUT
#define NOUT %(n_out)d
#endif
#define K %(k)d

static float in_buf[K][NIN];
static float out_buf[K][NOUT];

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

static inline void one_call(void) {
    for (int k = 0; k < K; ++k) {
        %(name)s_forward(in_buf[k], out_buf[k]);
        in_buf[(k + 1) %% K][0] += out_buf[k][0] * 1e-30f;  /* serialize consecutive calls */
    }
}

int main(int argc, char **argv) {
    long samples = argc > 1 ? atol(argv[1]) : 1000;
    long repeats = argc > 2 ? atol(argv[2]) : 5;
    double warmup_us = argc > 3 ? atof(argv[3]) : 50000.0;
    double target_us = argc > 4 ? atof(argv[4]) : %(target)f;
    unsigned s = 12345u;
    for (int k = 0; k < K; ++k)
        for (int i = 0; i < NIN; ++i) { s = s * 1103515245u + 12345u; in_buf[k][i] = ((s >> 8) & 0xffff) / 32768.0f - 1.0f; }
    double t0 = now_us();
    while (now_us() - t0 < warmup_us) one_call();
    long n = 1;
    for (;;) {
        double best = 1e300;
        for (int trial = 0; trial < 5; ++trial) {
            double a = now_us();
            for (long c = 0; c < n; ++c) one_call();
            double d = now_us() - a;
            if (d < best) best = d;
        }
        if (best >= 200.0 || n >= (1L << 24)) { n = (long)(n * target_us / best + 0.5); if (n < 1) n = 1; break; }
        n *= 4;
    }
    double *t = malloc(sizeof(double) * samples * repeats);
    if (!t) return 2;
    for (long r = 0; r < repeats; ++r)
        for (long i = 0; i < samples; ++i) {
            double a = now_us();
            for (long c = 0; c < n; ++c) one_call();
            t[r * samples + i] = (now_us() - a) / (double)n;
        }
    printf("{\"calls_per_sample\": %%ld, \"repeats\": %%ld, \"samples_us\": [", n, repeats);
    for (long i = 0; i < samples * repeats; ++i) printf(i ? ",%%.5f" : "%%.5f", t[i]);
    printf("], \"check\": %%.6g}\n", (double)out_buf[0][0]);
    free(t);
    return 0;
}
"""


def write_harness(out_dir: Path, header: Path, name: str, n_in: int, n_out: int,
                  forwards_per_call: int = 1) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}_timing.c"
    path.write_text(HARNESS % {"header": Path(header).name, "name": name, "n_in": n_in, "n_out": n_out,
                               "k": forwards_per_call, "target": SAMPLE_TARGET_US})
    return path


def compile_timing(sources: list[Path], out_path: Path, include_dir: Path,
                   flags: tuple[str, ...] = ("-O3", "-march=native"), libs: tuple[str, ...] = ()) -> Path:
    """gcc the harness with the forward's source into one executable (no LTO: separate units)."""
    cmd = ["gcc", *flags, "-std=c11", "-I", str(include_dir), *map(str, sources), "-o", str(out_path),
           *libs, "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
        raise RuntimeError(f"gcc failed for {' '.join(map(str, sources))}: {first}")
    return out_path


def run_timing(binary: Path, *, samples: int = 1000, repeats: int = 5, timeout: float = 120.0) -> dict:
    """Run a compiled harness in its own process and summarize its samples."""
    proc = subprocess.run([str(binary), str(samples), str(repeats)], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"timing harness {binary} exited with {proc.returncode}: {proc.stderr.strip()[:200]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    out = summarize(data["samples_us"], int(data["repeats"]), int(data["calls_per_sample"]))
    return out


def object_bytes(source: Path, include_dir: Path, flags: tuple[str, ...] = ("-O3", "-march=native")) -> int:
    """Deployed size of a C source: text + data + bss of its compiled object (``size`` Berkeley)."""
    obj = Path(source).with_suffix(".size.o")
    proc = subprocess.run(["gcc", *flags, "-std=c11", "-I", str(include_dir), "-c", str(source), "-o", str(obj)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"gcc -c failed for {source}: {(proc.stderr.strip().splitlines() or [''])[0]}")
    out = subprocess.run(["size", "-B", str(obj)], capture_output=True, text=True, check=True).stdout
    fields = out.strip().splitlines()[-1].split()
    obj.unlink(missing_ok=True)
    return int(fields[0]) + int(fields[1]) + int(fields[2])
