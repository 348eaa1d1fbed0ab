"""Run every ``bench/bench_*.py`` module in turn (``make bench``); a failing benchmark fails the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    failed = []
    for script in sorted(Path(__file__).parent.glob("bench_*.py")):
        print(f"\n== {script.stem} ==", flush=True)
        # Each in its own process: one benchmark's exit or state cannot end or skew the others.
        result = subprocess.run([sys.executable, "-m", f"bench.{script.stem}"], check=False)
        if result.returncode != 0:
            failed.append(f"{script.stem} (exit {result.returncode})")
    if failed:
        print(f"\nfailed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
