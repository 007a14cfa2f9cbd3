"""Run every ``bench/bench_*.py`` (or those named on the command line): ``python -m bench [NAME …]``.

Each module has a ``main() -> int``; this runner prints a header per benchmark and fails when any
benchmark misses its target (returns non-zero).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    known = sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    if any(arg in ("-h", "--help") for arg in argv):
        print(f"usage: python -m bench [NAME ...]\nbenchmarks: {', '.join(known)} (all when none is named)")
        return 0
    unknown = [name for name in argv if name not in known]
    if unknown:
        print(f"unknown benchmark: {', '.join(unknown)}; choose from {', '.join(known)}", file=sys.stderr)
        return 2
    names = argv or known
    failures = []
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"\n=== bench {name} ===", flush=True)
        started = time.perf_counter()
        code = module.main()
        outcome = "ok" if code == 0 else "MISSED TARGET"
        print(f"=== bench {name}: {outcome} in {time.perf_counter() - started:.0f} s")
        if code != 0:
            failures.append(name)
    if failures:
        print(f"\nbenchmarks that missed their targets: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
