#!/usr/bin/env python
"""Profile a model or an exported artifact: params, MACs, bytes, latency (batch 1, one thread, fresh process).

    python tools/profile.py model.onnx --input-shape 1,16
    python tools/profile.py pruned.pt --json
    python tools/profile.py export_dir/            # a C export (student.c + student.h)

Same command line as ``python -m compress profile`` (compress.profile.cli.main).
"""
import os
import sys

# This file is named like the standard library's `profile` module (used by cProfile, which torch imports):
# replace the script's own directory on sys.path by the repository root so the stdlib module is found.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from compress.profile.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
