"""The `skewless` command line: demo, generate, online-sql, check."""

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

    online = sub.add_parser("online-sql", help="render target/online_sql/<dialect>/<view>.sql (runs dbt compile)")
    online.add_argument("--project-dir", type=Path, default=Path.cwd())

    check = sub.add_parser("check", help="prove online and offline SQL compute the same features; lint leakage")
    check.add_argument("--project-dir", type=Path, default=Path.cwd())
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument("--online-sql", type=Path, help="a hand-written online query to check instead")
    check.add_argument("--feature-view", help="the feature view --online-sql computes")
    check.add_argument("--dialect", default="duckdb", help="dialect of --online-sql (default duckdb)")
    check.add_argument("--no-compile", action="store_true",
                       help="use the existing compiles under target/skewless (do not run dbt compile)")
    check.add_argument("--vars", default=None, help="dbt vars (YAML/JSON) for the compiles, e.g. enabling models")

    args = parser.parse_args(argv)
    if args.command == "check":
        from skewless.check_cli import run_check

        return run_check(args)
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
        elif args.command == "online-sql":
            from skewless.online_sql import OUT_DIR, render_online_sql
            from skewless.project import Project

            project = Project(args.project_dir.resolve())
            for name in render_online_sql(project):
                print(f"{OUT_DIR}/<duckdb|postgres>/{name}.sql")
    except (ManifestError, StepFailed, FileNotFoundError) as exc:
        print(f"skewless: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
