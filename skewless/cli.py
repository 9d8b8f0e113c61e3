"""The `skewless` command line: demo, generate, build, online-sql, check, materialize, \
serve, dev, audit."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from skewless.bundle import BundleError
from skewless.manifest import ManifestError
from skewless.project import StepFailed
from skewless.raw_exports import RawExportError
from skewless.serving.server import BadRequest, StoreUnavailable, UnknownFeature


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an ISO 8601 timestamp (e.g. 2026-05-20T10:00:00)"
        ) from None


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

    build = sub.add_parser(
        "build",
        help="check the raw exports, dbt build with every test into "
        "data/.builds/<id>, and only then publish it",
    )
    build.add_argument("--project-dir", type=Path, default=Path.cwd())
    build.add_argument("--vars", default=None, help="dbt vars (YAML/JSON) for the build")

    online = sub.add_parser(
        "online-sql", help="render target/online_sql/<dialect>/<view>.sql (runs dbt compile)"
    )
    online.add_argument("--project-dir", type=Path, default=Path.cwd())

    check = sub.add_parser(
        "check", help="prove online and offline SQL compute the same features; lint leakage"
    )
    check.add_argument("--project-dir", type=Path, default=Path.cwd())
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument(
        "--online-sql", type=Path, help="a hand-written online query to check instead"
    )
    check.add_argument("--feature-view", help="the feature view --online-sql computes")
    check.add_argument(
        "--dialect", default="duckdb", help="dialect of --online-sql (default duckdb)"
    )
    check.add_argument(
        "--no-compile",
        action="store_true",
        help="use the existing compiles under target/skewless (do not run dbt compile)",
    )
    check.add_argument(
        "--vars", default=None, help="dbt vars (YAML/JSON) for the compiles, e.g. enabling models"
    )

    mat = sub.add_parser(
        "materialize",
        help="bring the online store up to an instant (Feast materialize, "
        "then materialize-incremental)",
    )
    mat.add_argument("--project-dir", type=Path, default=Path.cwd())
    mat.add_argument("--end", type=_instant, default=None, help="the instant (default now, UTC)")
    mat.add_argument("--quiet", action="store_true", help="no progress, only the final line")

    serve = sub.add_parser("serve", help="the HTTP API: features and predictions for keys")
    serve.add_argument("--project-dir", type=Path, default=Path.cwd())
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1); any other address requires $SKEWLESS_API_TOKEN",
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--access-log", action="store_true", help="log every request (uvicorn)")
    serve.add_argument(
        "--bundle",
        type=Path,
        help="a model bundle for /predict (e.g. data/models/lead_conversion.joblib)",
    )

    dev = sub.add_parser(
        "dev",
        help="serve, and on every save of a model or yml: build what changed, check, "
        "feast apply, materialize, serve the new definitions (one warm process)",
    )
    dev.add_argument("--project-dir", type=Path, default=Path.cwd())
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only)")
    dev.add_argument("--port", type=int, default=8000)

    audit = sub.add_parser(
        "audit", help="served features vs an offline recompute at the same instant"
    )
    audit.add_argument("--project-dir", type=Path, default=Path.cwd())
    audit.add_argument("--keys", type=int, default=200, help="keys to sample (default 200)")
    audit.add_argument(
        "--as-of", type=_instant, default=None, help="the instant (default now, UTC)"
    )
    audit.add_argument(
        "--max-mismatch-rate",
        type=float,
        default=0.0,
        help="exit 1 when a feature's mismatch rate is above this (default 0)",
    )
    audit.add_argument("--seed", type=int, default=0, help="key sample seed")
    audit.add_argument(
        "--out",
        type=Path,
        default=Path("target") / "audit",
        help="folder for audit.txt and audit.html (relative to the project)",
    )
    audit.add_argument("--format", choices=["text", "json"], default="text")

    args = parser.parse_args(argv)
    if args.command == "check":
        from skewless.check.cli import run_check

        return run_check(args)
    try:
        return _run(args)
    except (
        ManifestError,
        StepFailed,
        FileNotFoundError,
        BundleError,
        BadRequest,
        UnknownFeature,
        RawExportError,
        StoreUnavailable,
    ) as exc:
        print(f"skewless: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from skewless.project import Project

    if args.command == "generate":
        from skewless.demo.generate import generate, write_csv, write_parquet

        writer = write_csv if args.format == "csv" else write_parquet
        for path in writer(generate(args.leads, args.seed), args.out):
            print(path)
        return 0
    project = Project(args.project_dir.resolve())
    if args.command == "demo":
        from skewless.demo.run import run_demo

        run_demo(project.root)
    elif args.command == "build":
        from skewless.publish import build_and_publish

        build_and_publish(project, args.vars)
    elif args.command == "online-sql":
        from skewless.check.compiles import write_online_sql
        from skewless.online_sql import OUT_DIR

        for name in write_online_sql(project):
            print(f"{OUT_DIR}/<duckdb|postgres>/{name}.sql")
    elif args.command == "materialize":
        from skewless.clock import utc_now
        from skewless.feast.materialize import materialize

        end = args.end or utc_now()
        views = materialize(project.feature_store(), end, quiet=args.quiet)
        print(f"materialized {', '.join(views)} up to {end.isoformat()}")
    elif args.command == "serve":
        from skewless.bundle import ModelBundle
        from skewless.serving.http_api import TOKEN_ENV, is_loopback, serve
        from skewless.serving.server import FeatureServer

        if not is_loopback(args.host) and not os.environ.get(TOKEN_ENV):
            print(
                f"skewless: refusing to serve on {args.host} without authentication: set "
                f"{TOKEN_ENV} (clients then send 'Authorization: Bearer <token>'), or bind "
                "127.0.0.1",
                file=sys.stderr,
            )
            return 2
        bundle = ModelBundle.load(args.bundle, project) if args.bundle else None
        serve(FeatureServer(project), bundle, args.host, args.port, args.access_log)
    elif args.command == "dev":
        from skewless.dev_loop import run_dev
        from skewless.serving.http_api import is_loopback

        if not is_loopback(args.host):
            print(f"skewless dev: serves 127.0.0.1 only (got {args.host})", file=sys.stderr)
            return 2
        return run_dev(project, args.host, args.port)
    elif args.command == "audit":
        from skewless.audit import run_audit, write_reports
        from skewless.serving.server import FeatureServer

        server = FeatureServer(project)
        report = run_audit(
            project, server, args.keys, args.as_of, args.max_mismatch_rate, args.seed
        )
        server.close()
        text, page = write_reports(report, project.root / args.out)
        print(
            report.to_json()
            if args.format == "json"
            else f"{report.text()}\nreports: {text}, {page}"
        )
        return report.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
