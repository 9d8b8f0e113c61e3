"""`skewless check` on the command line: compile what the check reads, run it, print, exit.

Exit codes: 0 proven equal and clean; 1 skew or leakage found; 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import sys

from skewless.check.compiles import compile_for_check
from skewless.check.run import UsageError, check_project
from skewless.manifest import ManifestError
from skewless.project import Project, StepFailed


def run_check(args: argparse.Namespace) -> int:
    project = Project(args.project_dir.resolve())
    try:
        if not project.manifest.exists():
            raise UsageError(
                f"{project.manifest} not found: run `dbt build` (or `dbt compile`) first"
            )
        if args.online_sql is not None and not args.feature_view:
            raise UsageError("--online-sql needs --feature-view NAME")
        summary = None
        if not args.no_compile:
            try:
                summary = compile_for_check(project, args.vars)
            except ValueError as exc:  # --vars not a mapping
                raise UsageError(str(exc)) from None
            if args.format == "text":
                print(summary.line())
        report = check_project(
            project, args.online_sql, args.feature_view, args.dialect, compiles=summary
        )
    except (UsageError, ManifestError, StepFailed) as exc:
        print(f"skewless check: {exc}", file=sys.stderr)
        return 2
    print(report.to_json() if args.format == "json" else report.text())
    return report.exit_code
