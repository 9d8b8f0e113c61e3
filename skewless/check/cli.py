"""`skewless check` on the command line: compile what the check reads, run it, print, exit.

Exit codes: 0 proven equal and clean; 1 skew or leakage found; 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import sys
import time

from skewless.check.run import UsageError, check_project
from skewless.manifest import ManifestError
from skewless.project import Project, StepFailed


def compile_for_check(project: Project, dbt_vars: str | None = None) -> float:
    """The portable and online compiles (target/skewless/*) and target/online_sql; seconds taken."""
    from skewless.online_sql import compile_mode, render_online_sql

    start = time.perf_counter()
    compile_mode(project, "portable", dbt_vars)
    render_online_sql(project, dbt_vars=dbt_vars)
    return time.perf_counter() - start


def run_check(args: argparse.Namespace) -> int:
    project = Project(args.project_dir.resolve())
    try:
        if not project.manifest.exists():
            raise UsageError(
                f"{project.manifest} not found: run `dbt build` (or `dbt compile`) first"
            )
        if args.online_sql is not None and not args.feature_view:
            raise UsageError("--online-sql needs --feature-view NAME")
        if not args.no_compile:
            seconds = compile_for_check(project, args.vars)
            if args.format == "text":
                print(f"compiled the portable and online renderings in {seconds:.1f} s")
        report = check_project(project, args.online_sql, args.feature_view, args.dialect)
    except (UsageError, ManifestError, StepFailed) as exc:
        print(f"skewless check: {exc}", file=sys.stderr)
        return 2
    print(report.to_json() if args.format == "json" else report.text())
    return report.exit_code
