"""`skewless check`: prove that the online and offline paths compute the same features.

For every feature of every feature view, the offline path (the dbt model in its portable
rendering: evaluated at each tick, or the point-in-time contract's as-of pick for views of
versions) and the online path (the rendered online SQL, or a hand-written query given with
``--online-sql``) are traced to base columns (:mod:`skewless.check.lineage`) and reduced to
signatures (:mod:`skewless.check.signature`):

- equal signatures: **proven equal**;
- different: **skew**, with the view, the feature, both expressions and what differs;
- untraceable: **unknown**, and both paths are run on sampled (key, instant) points in DuckDB
  (:mod:`skewless.check.sampling`); any differing point is skew.

It also runs the leakage lint (:mod:`skewless.check.lint`) over the project's non-staging models.
Exit codes: 0 proven equal (or unknown but equal on every sample) and no leak; 1 skew or leak;
2 bad usage or unreadable input.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import sqlglot

from skewless.check.compiles import CompileSummary, compiled_sql, digest
from skewless.check.existence import describe, presence
from skewless.check.lineage import Lineage, Traced, Undecidable
from skewless.check.lint import (
    Leak,
    following_frames,
    label_upstream,
    truncated_timestamp,
    unbounded_aggregate,
    unbounded_event_reads,
    wall_clock,
)
from skewless.check.results_cache import ResultsCache, key
from skewless.check.signature import Signature, differences, signature
from skewless.manifest import FeatureViewSpec, load_project, read_manifest, upstream
from skewless.online_sql import has_as_of, load_online_sql, point_query
from skewless.project import Project


class UsageError(ValueError):
    """Bad arguments or unreadable input (exit code 2)."""


@dataclass
class FeatureResult:
    view: str
    feature: str
    status: str  # equal | skew | unknown
    differences: list[str] = field(default_factory=list)
    offline: str = ""
    online: str = ""
    reason: str = ""
    sampled: str = ""


@dataclass
class Report:
    features: list[FeatureResult] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    seconds: float = 0.0
    reused: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if self.leaks or any(f.status == "skew" for f in self.features) else 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "exit_code": self.exit_code,
                "seconds": round(self.seconds, 3),
                "reused": self.reused,
                "features": [asdict(f) for f in self.features],
                "leaks": [asdict(x) for x in self.leaks],
            },
            indent=2,
        )

    def text(self) -> str:
        lines = []
        for f in self.features:
            if f.status == "equal":
                lines.append(f"proven equal  {f.view}.{f.feature}")
            elif f.status == "unknown":
                lines.append(f"unknown       {f.view}.{f.feature}: {f.reason}")
                lines.append(f"              sampled in DuckDB: {f.sampled}")
            else:
                lines.append(f"SKEW          {f.view}.{f.feature}")
                lines += [f"                - {d}" for d in f.differences]
                lines.append(f"                offline: {f.offline}")
                lines.append(f"                online:  {f.online}")
        for leak in self.leaks:
            where = f"{leak.model}.{leak.column}" if leak.column else leak.model
            lines.append(f"LEAK          {where} [{leak.rule}]: {leak.message}")
            if leak.sql:
                lines.append(f"                {leak.sql}")
        equal = sum(f.status == "equal" for f in self.features)
        if self.reused:
            lines.append(f"\n{self.reused}")
        lines.append(
            f"\n{equal}/{len(self.features)} features proven equal, "
            f"{sum(f.status == 'skew' for f in self.features)} skewed, "
            f"{sum(f.status == 'unknown' for f in self.features)} unknown, {len(self.leaks)} leaks "
            f"(checked in {self.seconds:.2f} s)"
        )
        return "\n".join(lines)


@dataclass
class Compiled:
    """What the check reads: the project spec, compiled models per render mode, relations."""

    project: Project
    manifest: dict
    portable: dict[str, str]
    online: dict[str, str]

    @classmethod
    def load(cls, project: Project, manifest: dict) -> "Compiled":
        """The compiles of ``project`` whose (already parsed) ``target/manifest.json`` is
        ``manifest``."""
        try:
            portable, online = (compiled_sql(project, m) for m in ("portable", "online"))
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        return cls(project, manifest, portable, online)

    @cached_property
    def _reads(self) -> dict[str, set[str]]:
        """Model name -> the models and seeds whose names appear as words in its portable SQL
        (what lineage can resolve a relation to; a superset of its refs)."""
        names = set(self.portable) | set(self._schema)
        return {
            name: (set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql)) & names) - {name}
            for name, sql in self.portable.items()
        }

    def fingerprint(self, name: str) -> str:
        """A hash of what tracing model ``name`` reads: its portable SQL and column types and
        those of every model and seed it reads, directly or not."""
        return self._closure_digest({name})

    def fingerprint_sql(self, *sqls: str) -> str:
        """A hash of the portable SQL and column types of every model and seed the queries
        ``sqls`` read, directly or not (a hand-written online query may read other models
        than its view does)."""
        words = set().union(*(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql) for sql in sqls))
        return self._closure_digest(words & (set(self.portable) | set(self._schema)))

    def _closure_digest(self, roots: set[str]) -> str:
        seen, todo = set(roots), list(roots)
        while todo:
            for above in self._reads.get(todo.pop(), ()):
                if above not in seen:
                    seen.add(above)
                    todo.append(above)
        schema = self._schema
        return digest(
            *(
                f"{n}\n{self.portable.get(n, '')}\n{json.dumps(schema.get(n), sort_keys=True)}"
                for n in sorted(seen)
            )
        )

    @cached_property
    def lineage(self) -> Lineage:
        """One lineage for the whole check: every upstream model is traced once."""
        return Lineage(self.portable, self.schema(), ())

    def nodes(self) -> list[dict]:
        return [
            n
            for n in self.manifest["nodes"].values()
            if n.get("resource_type") in ("model", "seed")
        ]

    def schema(self) -> dict[str, dict[str, str]]:
        """Relation name -> column -> type, from the yml of every model and seed."""
        return self._schema

    @cached_property
    def _schema(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for node in self.nodes():
            name = node.get("alias") or node["name"]
            cols = {
                c: (v.get("data_type") or "varchar") for c, v in (node.get("columns") or {}).items()
            }
            cols.update(node.get("config", {}).get("column_types") or {})
            if cols:
                out[name] = cols
        return out

    def meta(self, key: str) -> dict[str, object]:
        """Model name -> meta.skewless[key], for models that set it."""
        out = {}
        for node in self.nodes():
            value = ((node.get("config", {}).get("meta") or {}).get("skewless") or {}).get(key)
            if value:
                out[node["name"]] = value
        return out


def offline_point_sql(view: FeatureViewSpec, compiled: Compiled) -> str:
    """The offline path of ``view`` at one instant: the portable model, evaluated at its ticks
    (window views), or under the point-in-time pick (views of versions)."""
    sql = compiled.portable[view.name]
    return sql if has_as_of(compiled.online[view.name]) else point_query(view, sql)


def _summary(sig: Signature) -> str:
    conds = [k[1] + " = requested " + name for name, k in sig.keys.items()]
    conds += [w.words() for w in sig.time.values()] + list(sig.filters.values())
    picked = f"; {sig.selection[1]}" if sig.selection else ""
    return f"{sig.shown} where {' and '.join(conds) or 'always'}{picked}"


def compare_view(
    view: FeatureViewSpec,
    compiled: Compiled,
    online_sql: str,
    dialect: str = "duckdb",
    features: list[str] | None = None,
) -> list[FeatureResult]:
    """Each feature of ``view``: proven equal only when both the value (signature) and which
    keys get a value at the instant (:mod:`skewless.check.existence`) are proven the same;
    unknown when either cannot be read or the row existence differs (sampling decides)."""
    lineage = compiled.lineage.for_keys(tuple(view.join_keys))
    names = features or [f.name for f in view.features]
    offline_sql = offline_point_sql(view, compiled)
    offline = _trace(lineage, offline_sql, "duckdb")
    online = _trace(lineage, online_sql, dialect)
    results = []
    for name in names:
        off, on = offline.get(name), online.get(name)
        if on is None:
            results.append(
                FeatureResult(view.name, name, "skew", [f"the online query has no column '{name}'"])
            )
            continue
        try:
            for side in (off, on):
                if isinstance(side, Undecidable):
                    raise side
            a, b = signature(name, off), signature(name, on)
        except Undecidable as exc:
            results.append(FeatureResult(view.name, name, "unknown", reason=str(exc)))
            continue
        diffs = differences(a, b)
        if diffs:
            results.append(FeatureResult(view.name, name, "skew", diffs, _summary(a), _summary(b)))
            continue
        reason = _existence_differs(lineage, offline_sql, online_sql, dialect, name)
        status = "unknown" if reason else "equal"
        results.append(
            FeatureResult(view.name, name, status, [], _summary(a), _summary(b), reason=reason)
        )
    return results


def _existence_differs(
    lineage: Lineage, offline_sql: str, online_sql: str, dialect: str, name: str
) -> str:
    """Why row existence of ``name`` is not proven the same on both paths ('' when it is)."""
    try:
        a = presence(lineage, offline_sql, name, "duckdb")
        b = presence(lineage, online_sql, name, dialect)
    except Undecidable as exc:
        return f"which keys get a value at the instant cannot be read: {exc}"
    if a == b:
        return ""
    return (
        "the two paths may give a value to different keys at the instant: offline when "
        f"{describe(a)[:300]}; online when {describe(b)[:300]}"
    )


def _trace(lineage: Lineage, sql: str, dialect: str) -> dict[str, Traced | Undecidable]:
    try:
        return lineage.trace_each(sql, dialect)
    except Undecidable as exc:
        return _Everything(exc)


class _Everything(dict):
    """Every column undecidable for the same reason (the query as a whole could not be read)."""

    def __init__(self, reason: Undecidable):
        super().__init__()
        self.reason = reason

    def get(self, key, default=None):
        return self.reason


def lint(compiled: Compiled, spec, cache: ResultsCache | None = None) -> list[Leak]:
    """The leakage rules over every model that is not staging (a model's findings are reused
    from ``cache`` when nothing it reads changed)."""
    event_tables = {name: str(ts) for name, ts in compiled.meta("event_ts").items()}
    labels = set(compiled.meta("label"))
    context = json.dumps([event_tables, sorted(labels)], sort_keys=True)
    leaks: list[Leak] = []
    models = {n["name"]: n for n in compiled.nodes() if n.get("resource_type") == "model"}
    for name, node in sorted(models.items()):
        if "staging" in node.get("fqn", []) or name not in compiled.portable:
            continue
        view = spec.feature_views.get(name)
        above = [n["name"] for n in upstream(compiled.manifest, node["unique_id"]).values()]
        entry = key("lint", name, context, repr(view), repr(above), compiled.fingerprint(name))
        found = cache.get("models linted", entry) if cache else None
        if found is None:
            leaks_here = lint_model(compiled, name, view, above, event_tables, labels)
            found = [asdict(x) for x in leaks_here]
            if cache:
                cache.put(entry, found)
        leaks += [Leak(**x) for x in found]
    return leaks


def lint_model(
    compiled: Compiled,
    name: str,
    view: FeatureViewSpec | None,
    above: list[str],
    event_tables: dict[str, str],
    labels: set[str],
) -> list[Leak]:
    """The leakage rules over model ``name`` (``view``: its spec when it is a feature view;
    ``above``: the models upstream of it)."""
    lineage = compiled.lineage  # the portable compiles bind no parameters: no join keys needed
    sql = compiled.portable[name]
    leaks = wall_clock(name, sql) + following_frames(name, sql)
    try:
        columns = lineage.trace_model(name)  # views were traced already by compare_view
    except Undecidable:
        return leaks + unbounded_event_reads(lineage, name, sql, event_tables)
    aggregates = [
        leak
        for column, traced in columns.items()
        if isinstance(traced, Traced)
        for leak in unbounded_aggregate(name, column, traced)
    ]
    # one leak, one finding: an all-time aggregate flagged by column is not repeated as an
    # unbounded read of the events it aggregates
    leaks += unbounded_event_reads(
        lineage, name, sql, event_tables, {leak.column for leak in aggregates if leak.column}
    )
    leaks += aggregates
    if view is not None:
        traced = columns.get(view.timestamp)
        if isinstance(traced, Traced):
            leaks += truncated_timestamp(name, view.timestamp, traced)
        leaks += label_upstream(name, above, labels)
    return leaks


def check_project(
    project: Project,
    online_sql_file: Path | None = None,
    view_name: str | None = None,
    dialect: str = "duckdb",
    sample_points: int = 200,
    reuse: bool = True,
    compiles: CompileSummary | None = None,
) -> Report:
    """Check every view's rendered online SQL (or one hand-written query) and lint the project.

    ``reuse``: take the static results (proofs, lint findings) of views and models whose SQL
    did not change from the last checks (:mod:`skewless.check.results_cache`); sampling always
    runs again. The report's ``reused`` line says what was reused, with what ``compiles``
    (the compile step's summary, when it ran) reused."""
    start = time.perf_counter()
    cache = ResultsCache.load(project) if reuse else None
    manifest = read_manifest(project.manifest)  # parsed once for the whole check
    spec = load_project(project.root, manifest=manifest)
    compiled = Compiled.load(project, manifest)
    report = Report()
    if online_sql_file is not None:
        if not view_name or view_name not in spec.feature_views:
            raise UsageError(
                f"--online-sql needs --feature-view NAME, one of {', '.join(spec.feature_views)}"
                + (f" (got '{view_name}')" if view_name else "")
            )
        try:
            sql = online_sql_file.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {online_sql_file}: {exc.strerror}") from None
        try:
            sqlglot.parse_one(sql, read=dialect)
        except Exception as exc:  # noqa: BLE001 - sqlglot raises several kinds on garbage input
            raise UsageError(
                f"cannot parse {online_sql_file} as {dialect} SQL for feature view "
                f"'{view_name}': {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        view = spec.feature_views[view_name]
        queries = {view_name: (view, sql, dialect)}
    else:
        try:
            online = load_online_sql(project, spec)
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        queries = {
            name: (spec.feature_views[name], q.sql["duckdb"], "duckdb")
            for name, q in online.items()
        }
    for name, (view, sql, sql_dialect) in queries.items():
        results = _compare_cached(view, compiled, sql, sql_dialect, cache)
        unknown = [r for r in results if r.status == "unknown"]
        if unknown:
            from skewless.check.sampling import SampleError, sample_compare

            try:
                outcome = sample_compare(
                    project, view, sql, sql_dialect, [r.feature for r in unknown], sample_points
                )
            except SampleError as exc:
                raise UsageError(f"feature view '{name}': {exc}") from None
            for r in unknown:
                r.sampled = outcome.describe(r.feature)
                if outcome.mismatches.get(r.feature):
                    r.status = "skew"
                    r.differences = [
                        f"{outcome.mismatches[r.feature]} of {outcome.points} "
                        "sampled points differ",
                        *outcome.examples.get(r.feature, []),
                    ]
        report.features += results
    report.leaks = lint(compiled, spec, cache)
    if cache is not None:
        try:
            cache.save()
        except OSError:  # a read-only project: the check itself is still right
            pass
        done = (compiles.reused() if compiles else []) + cache.reused()
        report.reused = "reused (unchanged since the last check): " + ", ".join(done)
    report.seconds = time.perf_counter() - start
    return report


def _compare_cached(
    view: FeatureViewSpec,
    compiled: Compiled,
    online_sql: str,
    dialect: str,
    cache: ResultsCache | None,
) -> list[FeatureResult]:
    """:func:`compare_view`, reused from ``cache`` when the view's spec, both paths' SQL and
    everything upstream are unchanged (fresh objects: sampling may update them)."""
    if cache is None:
        return compare_view(view, compiled, online_sql, dialect)
    offline = offline_point_sql(view, compiled)
    reads = compiled.fingerprint_sql(online_sql, offline)
    entry = key("view", repr(view), dialect, online_sql, offline, reads)
    found = cache.get("views checked", entry)
    if found is None:
        results = compare_view(view, compiled, online_sql, dialect)
        found = [asdict(r) for r in results]
        cache.put(entry, found)
    return [FeatureResult(**r) for r in found]
