"""Benchmark entry point: ``python benchmarks/run.py [--smoke] [options]``.

Runs every available runtime in its own process, round-robin (see
:mod:`flowbench.orchestrate`), writes the raw samples as JSON and the markdown report.
``bash scripts/bench`` sets up the peers first and calls this.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flowbench.orchestrate import BENCH_DIR, Options, run_benchmarks
from flowbench.report import render

REPO = BENCH_DIR.parent


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round, peers only if present")
    parser.add_argument("--rounds", type=int, default=5, help="round-robin rounds (default 5)")
    parser.add_argument("--memory-rounds", type=int, default=3, help="fresh-process W5 samples (default 3)")
    parser.add_argument("--only", action="append", default=[], help="workload id prefix to run (repeatable)")
    parser.add_argument("--runtime", action="append", default=[], help="runtime to run besides the floors")
    parser.add_argument("--size", type=int, help="run every sized workload at this one size")
    parser.add_argument("--json", type=Path, help="where the raw results go (default benchmarks/results/latest.json)")
    parser.add_argument("--report", type=Path, help="where the markdown goes (default docs/benchmarks.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    options = Options(
        smoke=args.smoke,
        rounds=args.rounds,
        memory_rounds=args.memory_rounds,
        only=tuple(args.only),
        runtimes=tuple(args.runtime),
        size=args.size,
    )
    if args.quiet:
        options.log = open(  # noqa: SIM115
            "/dev/null", "w"
        )
    doc = run_benchmarks(options)
    partial = args.smoke or args.only or args.runtime or args.size is not None
    json_path = args.json or (None if partial else BENCH_DIR / "results" / "latest.json")
    report_path = args.report or (None if partial else REPO / "docs" / "benchmarks.md")
    text = render(doc)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=1) + "\n")
    if report_path is not None:
        report_path.write_text(text)
        print(f"wrote {report_path}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
