"""`skewless audit`: do served features equal an offline recompute at the same instant?

1. sample N keys (deterministically, by hash) among the keys of the audited feature views;
2. *served*: what a client gets now: :meth:`skewless.serving.FeatureServer.get` at ``as_of``
   (the online store, with ttl, plus the fresh SQL);
3. *offline*: the ``asof_join`` macro, compiled by dbt (the ``compile_only`` target, which reads
   the DuckDB file read-only), evaluated over a spine of (key, ``as_of``) on that file;
4. per feature: rows compared, equal, the mismatch rate and examples. The exit code is 1 when a
   feature's rate is above the threshold (default 0). The report is text, plus an HTML page
   (:mod:`skewless.audit_page`): a summary table and a chart per feature.

A mismatch is skew (or staleness: the online store not materialized up to ``as_of``), never
noise: both sides follow the same point-in-time contract, so the expected rate is 0. The
heading states the instant audited. An ``as_of`` before the online store's materialization end
cannot be served exactly (the store holds later values): serving refuses it, and so does the
audit (exit 2, saying why) rather than compare later values with past ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlglot

from skewless.audit_page import number
from skewless.clock import naive_utc
from skewless.manifest import FeatureViewSpec
from skewless.online_sql import COMPILE_TARGET, MODES_DIR, unqualify_tables
from skewless.project import Project, inline_sql
from skewless.serving.server import FeatureServer

SPINE = "_sk_audit_spine"
AS_OF = "_sk_as_of"


@dataclass
class FeatureAudit:
    view: str
    feature: str
    compared: int = 0
    equal: int = 0
    examples: list[tuple[str, object, object]] = field(
        default_factory=list
    )  # (key, served, offline)
    pairs: list[tuple[object, object, bool]] = field(
        default_factory=list
    )  # (offline, served, equal)

    @property
    def mismatches(self) -> int:
        return self.compared - self.equal

    @property
    def rate(self) -> float:
        return self.mismatches / self.compared if self.compared else 0.0


@dataclass
class AuditReport:
    as_of: datetime
    keys: int
    threshold: float
    features: list[FeatureAudit]

    @property
    def exit_code(self) -> int:
        return 1 if any(f.rate > self.threshold for f in self.features) else 0

    def text(self) -> str:
        lines = [
            f"skewless audit of the instant {self.as_of.isoformat(sep=' ')} UTC over "
            f"{self.keys} keys (served at that instant vs the as-of macro recomputed there)",
            f"{'feature':<36} {'compared':>8} {'equal':>8} {'mismatch':>9}",
        ]
        for f in self.features:
            lines.append(
                f"{f.view + '.' + f.feature:<36} {f.compared:>8} {f.equal:>8} {f.rate:>9.2%}"
            )
            for key, served, offline in f.examples:
                lines.append(f"    {key}: served {served!r}, offline {offline!r}")
        bad = [f for f in self.features if f.rate > self.threshold]
        lines.append(
            f"{len(bad)} of {len(self.features)} features above the {self.threshold:.2%} threshold"
            if bad
            else f"every feature at or below the {self.threshold:.2%} threshold"
        )
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "as_of": self.as_of.isoformat(),
                "keys": self.keys,
                "threshold": self.threshold,
                "exit_code": self.exit_code,
                "features": [
                    {
                        "view": f.view,
                        "feature": f.feature,
                        "compared": f.compared,
                        "equal": f.equal,
                        "mismatch_rate": f.rate,
                        "examples": [list(map(str, e)) for e in f.examples],
                    }
                    for f in self.features
                ],
            },
            indent=2,
        )

    def html(self) -> str:
        """The report as a page (summary table, a chart per feature): :mod:`skewless.audit_page`."""
        from skewless.audit_page import render_page

        return render_page(self)


def same(a, b) -> bool:
    """NULL equals NULL; numbers within 1e-9 relative; everything else by ==."""
    missing = lambda x: x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))  # noqa: E731
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    na, nb = number(a), number(b)
    if na is not None and nb is not None:
        return math.isclose(na, nb, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def offline_sql(project: Project, views: list[FeatureViewSpec], keys: list[str]) -> str:
    """The as-of macro over the audit spine, compiled by dbt, with bare table names."""
    refs = ", ".join(f"ref('{v.name}')" for v in views)
    inline = (
        f"{{{{ skewless.asof_join(spine='{SPINE}', spine_columns={keys + [AS_OF]!r}, "
        f"spine_ts='{AS_OF}', feature_views=[{refs}], full_feature_names=true) }}}}"
    )
    result = project.dbt(
        "compile",
        "--target",
        COMPILE_TARGET,
        "--inline",
        inline,
        "--target-path",
        str(project.root / MODES_DIR / "audit"),
    )
    sql = inline_sql(result)
    return unqualify_tables(sqlglot.parse_one(sql, read="duckdb")).sql(dialect="duckdb")


def sample_keys(project: Project, views: list[FeatureViewSpec], n: int, seed: int) -> pd.DataFrame:
    keys = ", ".join(views[0].join_keys)
    union = " union ".join(
        f"select {keys} from read_parquet('{v.path}')" for v in views if v.path.exists()
    )
    if not union:
        raise FileNotFoundError(
            f"no built rows for {', '.join(v.name for v in views)}: run `dbt build` first"
        )
    with project.connect() as con:
        return con.sql(
            f"select {keys} from ({union}) order by hash({keys}, {int(seed)}) limit {int(n)}"
        ).df()


def run_audit(
    project: Project,
    server: FeatureServer,
    n_keys: int = 200,
    as_of: datetime | None = None,
    threshold: float = 0.0,
    seed: int = 0,
    max_examples: int = 3,
) -> AuditReport:
    """Audit every feature of every view (grouped by their join keys) at ``as_of`` (default now)."""
    as_of = naive_utc(as_of) or server.clock()
    groups: dict[tuple[str, ...], list[FeatureViewSpec]] = {}
    for view in server.spec.feature_views.values():
        groups.setdefault(tuple(view.join_keys), []).append(view)
    audits, sampled = [], 0
    for keys, views in groups.items():
        spine = sample_keys(project, views, n_keys, seed).assign(**{AS_OF: as_of})
        sampled += len(spine)
        key_columns = {k: spine[k].tolist() for k in keys}
        served = server.get(
            key_columns, [f"{v.name}:{f.name}" for v in views for f in v.features], as_of=as_of
        )
        sql = offline_sql(project, views, list(keys))
        with project.connect() as con:
            con.register(SPINE, spine)
            offline = con.execute(sql).df()
        offline = spine[list(keys)].merge(offline, on=list(keys), how="left", validate="one_to_one")
        for view in views:
            for f in view.features:
                audit = FeatureAudit(view.name, f.name)
                for i in range(len(spine)):
                    s, o = served[f.name][i], offline[f"{view.name}__{f.name}"].iloc[i]
                    o = o.item() if hasattr(o, "item") else o  # numpy scalar -> Python value
                    o = None if (o is pd.NA or (isinstance(o, float) and math.isnan(o))) else o
                    ok = same(s, o)
                    audit.compared += 1
                    audit.equal += ok
                    audit.pairs.append((o, s, ok))
                    if not ok and len(audit.examples) < max_examples:
                        key = ", ".join(f"{k}={served[k][i]}" for k in keys)
                        audit.examples.append((key, s, o))
                audits.append(audit)
    return AuditReport(as_of, sampled, threshold, audits)


def write_reports(report: AuditReport, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    text, page = out_dir / "audit.txt", out_dir / "audit.html"
    text.write_text(report.text() + "\n")
    page.write_text(report.html())
    return text, page
