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
    names = argv or sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
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
