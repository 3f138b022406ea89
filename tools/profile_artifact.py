#!/usr/bin/env python
"""Profile a model or an exported artifact: params, MACs, bytes, latency (batch 1, one thread, fresh process).

    python tools/profile_artifact.py model.onnx --input-shape 1,16
    python tools/profile_artifact.py pruned.pt --json
    python tools/profile_artifact.py export_dir/            # a C export (student.c + student.h)

Same command line as ``python -m compress profile`` (compress.profile.cli.main).
"""
import sys

from compress.profile.cli import main

if __name__ == "__main__":
    sys.exit(main())
