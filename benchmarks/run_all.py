"""Run every benchmark script in this folder (``make bench``); each writes benchmarks/results/.

Usage: python benchmarks/run_all.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="script names (without .py) to run")
    args = parser.parse_args()
    scripts = sorted(p for p in HERE.glob("*.py")
                     if p.name != "run_all.py" and not p.name.startswith("_"))
    if args.only:
        scripts = [p for p in scripts if p.stem in args.only]
    failed = []
    for script in scripts:
        started = time.perf_counter()
        print(f"== {script.stem}", flush=True)
        code = subprocess.call([sys.executable, str(script)])
        print(f"== {script.stem}: exit {code} after {time.perf_counter() - started:.0f} s")
        if code:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
