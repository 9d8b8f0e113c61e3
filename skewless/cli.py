"""The `skewless` command line: `skewless demo`, `skewless generate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skewless.manifest import ManifestError
from skewless.project import StepFailed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skewless", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the main job on the embedded default (DuckDB + SQLite)")
    demo.add_argument("--project-dir", type=Path, default=Path.cwd())

    gen = sub.add_parser("generate", help="write the demo CRM's raw tables (deterministic)")
    gen.add_argument("--out", type=Path, required=True, help="output folder")
    gen.add_argument("--leads", type=int, default=2000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--format", choices=["csv", "parquet"], default="csv")

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from skewless.demo import run_demo

            run_demo(args.project_dir.resolve())
        elif args.command == "generate":
            from skewless.generate import generate, write_csv, write_parquet

            tables = generate(args.leads, args.seed)
            writer = write_csv if args.format == "csv" else write_parquet
            for path in writer(tables, args.out):
                print(path)
    except (ManifestError, StepFailed, FileNotFoundError) as exc:
        print(f"skewless: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
