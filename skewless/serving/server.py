"""Serving: the features of some keys at an instant, as training would have seen them then.

:class:`FeatureServer` answers one question, ``get(keys, features, as_of)``, from two sources
merged into one response:

- views with ``serve: store`` (the default) from the Feast online store that
  ``feature_store.yaml`` configures (SQLite or Redis), through the provider's ``online_read``;
  a value older than the view's ttl at ``as_of`` is NULL (stock Feast returns it as present);
- views with ``serve: sql`` (fresh features) by running their rendered online SQL
  (``target/online_sql/<dialect>/<view>.sql``) with bound parameters on the live event store
  (:mod:`skewless.serving.event_store`: the dbt DuckDB file, or PostgreSQL).

Exact about time: the online store holds each key's latest value at the end of the last
materialization (:mod:`skewless.serving.store_state`), so a store view is answered only at an
``as_of`` (default: now, UTC) at or after that end; an earlier ``as_of`` is a :class:`TooEarly`
error saying why, never the latest values passed off as past ones. Fresh views are computed at
any ``as_of`` within :data:`EARLIEST`..:data:`LATEST`.

Keys are checked strictly against their join key's type (:mod:`skewless.serving.request_keys`).
A key a view has no row for gets NULLs, and :meth:`FeatureServer.lookup` says which views had
none (``/predict`` reports those features as missing rather than scoring a silent default). A
feature the project does not define is an :class:`UnknownFeature` naming it. A store that does
not answer within ``$SKEWLESS_STORE_TIMEOUT`` seconds is a :class:`StoreUnavailable` naming it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import Callable, Iterable, Sequence

from skewless.clock import naive_utc, utc_now
from skewless.manifest import FeatureViewSpec, ProjectSpec, feast_type, load_project
from skewless.online_sql import OnlineQuery, load_online_sql
from skewless.project import Project
from skewless.serving.event_store import (
    EventStore,
    StoredActivity,
    StoreUnavailable,
    open_event_store,
    store_timeout,
)
from skewless.serving.request_keys import BadRequest, KeyType, key_columns
from skewless.serving.store_state import StoreState

__all__ = ["BadRequest", "FeatureServer", "StoreUnavailable", "TooEarly", "UnknownFeature"]

# the instants every part (pandas, Feast) can represent; an as_of outside is a BadRequest
EARLIEST = datetime(1677, 9, 22)
LATEST = datetime(2262, 4, 11)


class UnknownFeature(LookupError):
    """A requested feature, view or feature service the project does not define. ``str()`` is
    the message with what the project does define; :attr:`message` the message alone (for
    callers who may not see the project's feature names)."""

    def __init__(self, message: str, known: str = ""):
        super().__init__(message + (f" ({known})" if known else ""))
        self.message = message


class TooEarly(BadRequest):
    """An ``as_of`` before the online store's materialization end: it holds later values."""


_KEY_FIELDS = {"Int64": "int64_val", "Int32": "int32_val", "String": "string_val"}


@dataclass(frozen=True)
class Requested:
    """One requested feature: its view and name."""

    view: FeatureViewSpec
    feature: str


@dataclass(frozen=True)
class _Plan:
    """A resolved request, reused by every later request for the same features: the views with
    the feature names asked of each, and the join keys with their types."""

    views: list[tuple[FeatureViewSpec, list[str]]]
    keys: list[KeyType]


@dataclass(frozen=True)
class Lookup:
    """An answer: ``columns`` {join key: [...], feature: [...]} one row per requested key, and
    ``absent`` {view: [bool per row]}: True where the view has no value for the key at as_of
    (unknown key, NULL key, nothing yet, expired, or a row whose requested features are all
    NULL), so its features are NULL for want of a row."""

    columns: dict[str, list]
    absent: dict[str, list[bool]]
    views: list[tuple[FeatureViewSpec, list[str]]]

    def missing(self, row: int) -> list[str]:
        """The features of row ``row`` that are NULL because their view has no row."""
        return [name for view, names in self.views if self.absent[view.name][row] for name in names]


_PLANS_MAX = 1024  # distinct feature lists remembered; beyond that the cache starts over


class FeatureServer:
    """Features for keys from the online store and the fresh online SQL, merged."""

    def __init__(
        self,
        project: Project,
        store=None,
        events: EventStore | None = None,
        clock: Callable[[], datetime] = utc_now,
        spec: ProjectSpec | None = None,
    ):
        self.project = project
        self.spec = spec or load_project(project.root)
        self.store = store if store is not None else project.feature_store()
        self.clock = clock
        self.fresh = [v for v in self.spec.feature_views.values() if v.fresh]
        self._events = events
        self._queries: dict[str, OnlineQuery] | None = None
        # fresh DuckDB queries yield the CPU only while stored reads run (event_store.py)
        self.stored_activity = StoredActivity()
        self._provider = self.store._get_provider()
        prepare_online_store(self.store)
        self.state = StoreState(self.store)
        self._tables = {
            v.name: self.store.get_feature_view(v.name)
            for v in self.spec.feature_views.values()
            if not v.fresh
        }
        self._by_name: dict[str, list[FeatureViewSpec]] = {}
        for view in self.spec.feature_views.values():
            for f in view.features:
                self._by_name.setdefault(f.name, []).append(view)
        self._key_fields = {
            v.name: [_KEY_FIELDS[feast_type(e.data_type)] for e in v.entities]
            for v in self.spec.feature_views.values()
        }
        self._plans: dict[object, _Plan] = {}
        # more readiness checks (e.g. "is the store behind the registry"): (name, check), where
        # check() returns None when ready, else the reason; /ready runs them after the stores'
        self.extra_checks: list[tuple[str, Callable[[], str | None]]] = []

    # -- what was asked ---------------------------------------------------------------------------
    def resolve(self, features: Iterable[str] | str | None = None) -> list[Requested]:
        """``features``: a feature service name, or names ``view:feature`` / ``feature`` (when
        only one view has it); None: every feature of every view."""
        if features is None:
            out = [
                Requested(v, f.name) for v in self.spec.feature_views.values() for f in v.features
            ]
        elif isinstance(features, str):
            service = self.spec.feature_services.get(features)
            if service is None:
                raise UnknownFeature(
                    f"no feature service '{features}'",
                    f"known: {', '.join(self.spec.feature_services) or 'none'}",
                )
            out = [
                Requested(self.spec.feature_views[v], f.name)
                for v in service.views
                for f in self.spec.feature_views[v].features
            ]
        else:
            bad = [n for n in features if not isinstance(n, str)]
            if bad:
                raise BadRequest(f"feature names must be strings; got {bad[0]!r}"[:200])
            out = [self._one(name) for name in features]
        names = [r.feature for r in out]
        if len(set(names)) != len(names):  # the response is keyed by feature name
            raise BadRequest(
                f"features requested twice or from two views under one name: {names}"[:500]
            )
        return out

    def _one(self, name: str) -> Requested:
        view_name, _, feature = name.rpartition(":")
        if view_name:
            view = self.spec.feature_views.get(view_name)
            if view is None:
                raise UnknownFeature(f"unknown feature '{name}': no feature view '{view_name}'")
            if feature not in {f.name for f in view.features}:
                raise UnknownFeature(
                    f"unknown feature '{name}'",
                    f"view '{view_name}' has " + ", ".join(f.name for f in view.features),
                )
            return Requested(view, feature)
        views = self._by_name.get(feature, [])
        if not views:
            raise UnknownFeature(
                f"unknown feature '{feature}'", f"known: {', '.join(sorted(self._by_name))}"
            )
        if len(views) > 1:
            raise UnknownFeature(
                f"feature '{feature}' is in more than one view: ask for '<view>:{feature}'",
                ", ".join(v.name for v in views),
            )
        return Requested(views[0], feature)

    # -- answering ------------------------------------------------------------------------------
    def get(
        self,
        keys: dict[str, Sequence] | Sequence,
        features: Iterable[str] | str | None = None,
        as_of: datetime | None = None,
    ) -> dict[str, list]:
        """Columns ``{join key: [...], feature: [...]}``, one row per requested key, in order."""
        return self.lookup(keys, features, as_of).columns

    def lookup(
        self,
        keys: dict[str, Sequence] | Sequence,
        features: Iterable[str] | str | None = None,
        as_of: datetime | None = None,
    ) -> Lookup:
        """The columns of :meth:`get` and, per view, which rows it had no row for."""
        plan = self._plan(features)
        as_of = self._instant(as_of)
        columns = key_columns(keys, plan.keys)
        self._check_store_time(plan, as_of)
        out: dict[str, list] = dict(columns)
        absent: dict[str, list[bool]] = {}
        for view, names in plan.views:
            rows = list(zip(*(columns[k] for k in view.join_keys)))
            read = self._fresh if view.fresh else self._stored
            values, absent[view.name] = read(view, rows, names, as_of)
            out.update(values)
        return Lookup(out, absent, plan.views)

    def _instant(self, as_of: datetime | None) -> datetime:
        try:
            as_of = naive_utc(as_of) if as_of is not None else self.clock()
        except OverflowError:  # an offset that moves it past year 1 or 9999
            raise BadRequest(
                f"as_of {as_of.isoformat()} is outside the instants served "
                f"({EARLIEST.date()} to {LATEST.date()})"
            ) from None
        if not EARLIEST <= as_of <= LATEST:
            raise BadRequest(
                f"as_of {as_of.isoformat()} is outside the instants served "
                f"({EARLIEST.date()} to {LATEST.date()})"
            )
        return as_of

    def _check_store_time(self, plan: _Plan, as_of: datetime) -> None:
        """:class:`TooEarly` if a requested store view was materialized past ``as_of``;
        :class:`StoreUnavailable` if it was never materialized."""
        for view, _ in plan.views:
            if view.fresh:
                continue
            end = self.state.end(view.name)
            if end is None:
                raise StoreUnavailable(
                    f"the online store holds nothing for view {view.name}: "
                    "it was never materialized (run `skewless materialize`)"
                )
            if as_of < end:
                raise TooEarly(
                    f"as_of {as_of.isoformat(sep=' ')} is before the online store's state: view "
                    f"{view.name} is materialized up to {end.isoformat(sep=' ')}, and the store "
                    "keeps only each key's latest value, so it cannot answer an earlier instant. "
                    "Ask at or after that instant, or use historical retrieval for the past "
                    "(fresh `serve: sql` views answer any instant)"
                )

    def _plan(self, features: Iterable[str] | str | None) -> _Plan:
        """What ``features`` resolves to; remembered, since a service asks for the same list."""
        if features is not None and not isinstance(features, (str, list, tuple)):
            raise BadRequest('"features" must be a list of names, "feature_service" a name')
        key = features if features is None or isinstance(features, str) else tuple(features)
        try:
            plan = self._plans.get(key)
        except TypeError:  # a name that is not hashable: resolve() reports it
            plan = None
        if plan is not None:
            return plan
        views: dict[str, tuple[FeatureViewSpec, list[str]]] = {}
        for r in self.resolve(key):
            views.setdefault(r.view.name, (r.view, []))[1].append(r.feature)
        types = {e.join_key: e.data_type for v, _ in views.values() for e in v.entities}
        plan = _Plan(
            views=list(views.values()),
            keys=[KeyType(k, t, feast_type(t)) for k, t in types.items()],
        )
        if len(self._plans) >= _PLANS_MAX:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _stored(
        self, view: FeatureViewSpec, rows: list[tuple], names: list[str], as_of: datetime
    ) -> tuple[dict[str, list], list[bool]]:
        """The store read: ``names`` of ``view`` for ``rows`` (key tuples) at ``as_of`` from the
        online store, NULL past the ttl; and per row whether the store had no value. SQLite and
        Redis are read in one round trip for every key, decoded without protos
        (:mod:`skewless.serving.online_reads`); other stores through Feast's ``online_read``."""
        self.stored_activity.note()
        results = iter(self._read(view, [row for row in rows if None not in row], names))
        oldest = as_of - view.ttl if view.ttl else None
        oldest_utc = oldest.replace(tzinfo=timezone.utc) if oldest is not None else None
        found: list[list | None] = []
        for row in rows:
            if None in row:
                found.append(None)
                continue
            ts, values = next(results)
            if (
                values is None
                or all(v is None for v in values.values())
                or (
                    oldest is not None
                    and ts is not None
                    and ts < (oldest_utc if ts.tzinfo is not None else oldest)
                )
            ):
                found.append(None)  # no value (Redis: every value empty), or expired at as_of
                continue
            found.append([values.get(name) for name in names])
        columns = {
            name: [v[i] if v is not None else None for v in found] for i, name in enumerate(names)
        }
        return columns, [v is None for v in found]

    def _read(self, view: FeatureViewSpec, wanted: list[tuple], names: list[str]) -> list[tuple]:
        """Per key tuple in ``wanted``: (event time, {name: Python value}) or (None, None)."""
        from skewless.serving.online_reads import reader_for

        if not wanted:
            return []
        reader = reader_for(self.store)
        if reader is not None:
            try:
                return reader.read_view(self._tables[view.name], wanted, list(names))
            except _store_errors() as exc:
                raise StoreUnavailable(
                    f"online store {self.store.config.online_store.type}: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        entity_key, value, _ = _protos()
        fields, join_keys = self._key_fields[view.name], view.join_keys
        entity_keys = [
            entity_key(
                join_keys=join_keys, entity_values=[value(**{f: x}) for f, x in zip(fields, row)]
            )
            for row in wanted
        ]
        return [
            (ts, values and {n: _python(values.get(n)) for n in names})
            for ts, values in _online_read(
                self._provider, self.store.config, self._tables[view.name], entity_keys, names
            )
        ]

    def _fresh(
        self, view: FeatureViewSpec, rows: list[tuple], names: list[str], as_of: datetime
    ) -> tuple[dict[str, list], list[bool]]:
        if self._queries is None:
            self._queries = load_online_sql(
                self.project, self.spec, views=[v.name for v in self.fresh]
            )
        if self._events is None:
            try:
                self._events = open_event_store(self.project)
            except FileNotFoundError as exc:
                raise StoreUnavailable(str(exc)) from None
        wanted = list(dict.fromkeys(r for r in rows if None not in r))  # distinct key tuples
        if not wanted:
            return {name: [None] * len(rows) for name in names}, [True] * len(rows)
        params = {
            "as_of": as_of,
            **{k: [r[i] for r in wanted] for i, k in enumerate(view.join_keys)},
        }
        found = {
            tuple(r[k] for k in view.join_keys): r
            for r in self._events.query(
                self._queries[view.name], params, yield_cpu=self.stored_activity.recent()
            )
        }
        values = [found.get(r) for r in rows]
        columns = {name: [v.get(name) if v else None for v in values] for name in names}
        # the online SQL may return a row of NULLs for a key with no events: no row either
        return columns, [v is None or all(v.get(n) is None for n in names) for v in values]

    # -- health -----------------------------------------------------------------------------------
    def checks(self) -> dict[str, str | None]:
        """Readiness of each store: {name: None if it answers, else the reason}."""
        out: dict[str, str | None] = {}
        try:
            ping_online_store(self.store)
            out["online_store"] = None
        except StoreUnavailable as exc:
            out["online_store"] = str(exc)
        if self.fresh:
            try:
                if self._events is None:
                    self._events = open_event_store(self.project)
                self._events.check()
                out["event_store"] = None
            except (StoreUnavailable, FileNotFoundError) as exc:
                out["event_store"] = str(exc)
        if out["online_store"] is None:
            out["store_watermark"] = self._behind()
        return out

    def _behind(self) -> str | None:
        """None when the online store holds what the registry says was materialized into it;
        else which views it lacks (e.g. Redis restarted without its dump: every read would
        answer NULL as if the leads had no values). docs/design.md §8."""
        from skewless.watermark import store_behind

        try:
            behind = store_behind(self.store, list(self._tables))
        except _store_errors() as exc:
            return f"cannot read the store's watermark: {type(exc).__name__}: {exc}"
        return "; ".join(f"{view}: {why}" for view, why in sorted(behind.items())) or None

    def close(self) -> None:
        if self._events is not None:
            self._events.close()


def _store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions an online store raises when it cannot answer (down, frozen, locked)."""
    errors: list[type[BaseException]] = [sqlite3.OperationalError, OSError]
    try:
        import redis.exceptions

        errors += [
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.BusyLoadingError,
        ]
    except ImportError:
        pass
    return tuple(errors)


def _online_read(provider, config, table, entity_keys: list, names: list[str]) -> list:
    """The provider's ``online_read``; a store that cannot answer is a StoreUnavailable."""
    try:
        # a copy: Feast's Redis read appends its timestamp field to the list it is given
        return provider.online_read(config, table, entity_keys, list(names))
    except _store_errors() as exc:
        raise StoreUnavailable(
            f"online store {config.online_store.type}: {type(exc).__name__}: {exc}"
        ) from None


def prepare_online_store(store) -> None:
    """Make the online store fail fast and let readers read while a writer writes: Redis gets
    a client with ``$SKEWLESS_STORE_TIMEOUT`` socket timeouts and one immediate retry after a
    dropped connection (not a timeout); SQLite switches to WAL (readers never wait on a writer,
    nor on a writer killed mid-transaction) and a busy timeout."""
    online = store._get_provider().online_store
    kind = store.config.online_store.type
    timeout = store_timeout()
    if kind == "redis":
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.retry import Retry

        config = store.config.online_store
        if str(getattr(config, "redis_type", "redis")).endswith("redis"):
            nodes, params = online._parse_connection_string(config.connection_string)
            params.setdefault("socket_timeout", timeout)
            params.setdefault("socket_connect_timeout", timeout)
            # replaces a client Feast may have made already (default: 3 retries with backoff)
            online._client = Redis(
                host=nodes[0]["host"],
                port=int(nodes[0]["port"]),
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                **params,
            )
    elif kind == "sqlite":
        try:
            con = online._get_conn(store.config)
            con.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            con.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error:
            pass  # read-only or locked right now: readers still work, without WAL's guarantee


def ping_online_store(store) -> None:
    """Raise :class:`StoreUnavailable` unless the online store answers a trivial request."""
    online = store._get_provider().online_store
    kind = store.config.online_store.type
    try:
        if kind == "redis":
            online._get_client(store.config.online_store).ping()
        elif kind == "sqlite":
            online._get_conn(store.config).execute("select 1").fetchall()
    except _store_errors() as exc:
        raise StoreUnavailable(f"online store {kind}: {type(exc).__name__}: {exc}") from None


@cache
def _protos():
    """Feast's EntityKey and Value messages and its Value -> Python conversion (imported on first
    use, not with this module: the CLI imports it)."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import feast_value_type_to_python_type

    return EntityKey, Value, feast_value_type_to_python_type


_SCALARS = frozenset(
    {"int32_val", "int64_val", "double_val", "float_val", "string_val", "bool_val", "bytes_val"}
)


def _python(value) -> object:
    """A stored Value as Python: Feast's ``feast_value_type_to_python_type``, which returns a scalar
    field as it is, without its chain of checks for the scalar types (every contract type but
    timestamp)."""
    if value is None:
        return None
    field = value.WhichOneof("val")
    if field is None:
        return None
    if field in _SCALARS:
        return getattr(value, field)
    return _protos()[2](value)
