#!/usr/bin/env python3
"""The benchmark's trivial --exec worker: answers each line with its index.
With BURN_MS set, burns that much CPU per input first (a CPU-bound worker)."""
import json
import os
import sys
import time

burn = float(os.environ.get("BURN_MS", "0")) / 1000
for line in sys.stdin:
    if burn:
        end = time.process_time() + burn
        while time.process_time() < end:
            pass
    sys.stdout.write(json.dumps({"i": json.loads(line)["index"]}) + "\n")
    sys.stdout.flush()
