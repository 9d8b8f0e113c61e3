"""Serving: the features of some keys at an instant, as training would have seen them then.

:class:`FeatureServer` answers one question, ``get(keys, features, as_of)``, from two sources
merged into one response:

- views with ``serve: store`` (the default) from the Feast online store that
  ``feature_store.yaml`` configures (SQLite or Redis), through the provider's ``online_read``;
  a value older than the view's ttl at ``as_of`` is NULL (stock Feast returns it as present);
- views with ``serve: sql`` (fresh features) by running their rendered online SQL
  (``target/online_sql/<dialect>/<view>.sql``) with bound parameters on the live event store
  (:mod:`skewless.serving.event_store`: the dbt DuckDB file, or PostgreSQL).

The online store holds the latest materialized values; ``as_of`` (default: now, UTC) is the
instant the ttl and the fresh SQL are evaluated at. A key with no value gets NULLs; a feature
the project does not define is an :class:`UnknownFeature` error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import Callable, Iterable, Sequence

from skewless.serving.event_store import EventStore, open_event_store
from skewless.clock import naive_utc, utc_now
from skewless.manifest import FeatureViewSpec, ProjectSpec, feast_type, load_project
from skewless.online_sql import OnlineQuery, load_online_sql
from skewless.project import Project


class UnknownFeature(LookupError):
    """A requested feature, view or feature service the project does not define."""


class BadRequest(ValueError):
    """Keys that do not fit the requested views (missing join key, wrong type)."""


_KEY_FIELDS = {"Int64": ("int64_val", int), "Int32": ("int32_val", int), "String": ("string_val", str)}


@dataclass(frozen=True)
class Requested:
    """One requested feature: its view and name."""

    view: FeatureViewSpec
    feature: str


@dataclass(frozen=True)
class _Plan:
    """A resolved request, reused by every later request for the same features: the views with
    the feature names asked of each, and each join key's declared type and Python cast."""

    views: list[tuple[FeatureViewSpec, list[str]]]
    key_types: dict[str, tuple[str, Callable]]


_PLANS_MAX = 1024  # distinct feature lists remembered; beyond that the cache starts over


class FeatureServer:
    """Features for keys from the online store and the fresh online SQL, merged."""

    def __init__(self, project: Project, store=None, events: EventStore | None = None,
                 clock: Callable[[], datetime] = utc_now, spec: ProjectSpec | None = None):
        self.project = project
        self.spec = spec or load_project(project.root)
        self.store = store if store is not None else project.feature_store()
        self.clock = clock
        self.fresh = [v for v in self.spec.feature_views.values() if v.fresh]
        self._events = events
        self._queries: dict[str, OnlineQuery] | None = None
        self._provider = self.store._get_provider()
        self._tables = {v.name: self.store.get_feature_view(v.name)
                        for v in self.spec.feature_views.values() if not v.fresh}
        self._by_name: dict[str, list[FeatureViewSpec]] = {}
        for view in self.spec.feature_views.values():
            for f in view.features:
                self._by_name.setdefault(f.name, []).append(view)
        self._key_fields = {v.name: [_KEY_FIELDS[feast_type(e.data_type)][0] for e in v.entities]
                            for v in self.spec.feature_views.values()}
        self._plans: dict[object, _Plan] = {}

    # -- what was asked ---------------------------------------------------------------------------
    def resolve(self, features: Iterable[str] | str | None = None) -> list[Requested]:
        """``features``: a feature service name, or names ``view:feature`` / ``feature`` (when
        only one view has it); None: every feature of every view."""
        if features is None:
            out = [Requested(v, f.name) for v in self.spec.feature_views.values() for f in v.features]
        elif isinstance(features, str):
            service = self.spec.feature_services.get(features)
            if service is None:
                raise UnknownFeature(f"no feature service '{features}' (known: "
                                     f"{', '.join(self.spec.feature_services) or 'none'})")
            out = [Requested(self.spec.feature_views[v], f.name)
                   for v in service.views for f in self.spec.feature_views[v].features]
        else:
            out = [self._one(name) for name in features]
        names = [r.feature for r in out]
        if len(set(names)) != len(names):  # the response is keyed by feature name
            raise BadRequest(f"features requested twice or from two views under one name: {names}")
        return out

    def _one(self, name: str) -> Requested:
        view_name, _, feature = name.rpartition(":")
        if view_name:
            view = self.spec.feature_views.get(view_name)
            if view is None or feature not in {f.name for f in view.features}:
                raise UnknownFeature(f"unknown feature '{name}': "
                                     + (f"view '{view_name}' has {', '.join(f.name for f in view.features)}"
                                        if view else f"no feature view '{view_name}'"))
            return Requested(view, feature)
        views = self._by_name.get(feature, [])
        if not views:
            raise UnknownFeature(f"unknown feature '{feature}' (known: {', '.join(sorted(self._by_name))})")
        if len(views) > 1:
            raise UnknownFeature(f"feature '{feature}' is in views {', '.join(v.name for v in views)}: "
                                 f"ask for '<view>:{feature}'")
        return Requested(views[0], feature)

    # -- answering ------------------------------------------------------------------------------
    def get(self, keys: dict[str, Sequence] | Sequence, features: Iterable[str] | str | None = None,
            as_of: datetime | None = None) -> dict[str, list]:
        """Columns ``{join key: [...], feature: [...]}``, one row per requested key, in order."""
        plan = self._plan(features)
        as_of = naive_utc(as_of) or self.clock()
        key_columns = self._keys(keys, plan)
        out: dict[str, list] = dict(key_columns)
        for view, names in plan.views:
            rows = list(zip(*(key_columns[k] for k in view.join_keys)))
            columns = self._fresh(view, rows, names, as_of) if view.fresh else self._stored(view, rows, names, as_of)
            out.update(columns)
        return out

    def _plan(self, features: Iterable[str] | str | None) -> _Plan:
        """What ``features`` resolves to; remembered, since a service asks for the same list each time."""
        key = features if features is None or isinstance(features, str) else tuple(features)
        try:
            plan = self._plans.get(key)
        except TypeError:  # a name that is not a string: resolve() reports it
            plan = None
        if plan is not None:
            return plan
        views: dict[str, tuple[FeatureViewSpec, list[str]]] = {}
        for r in self.resolve(key):
            views.setdefault(r.view.name, (r.view, []))[1].append(r.feature)
        types = {e.join_key: e.data_type for v, _ in views.values() for e in v.entities}
        plan = _Plan(views=list(views.values()),
                     key_types={k: (t, _KEY_FIELDS[feast_type(t)][1]) for k, t in types.items()})
        if len(self._plans) >= _PLANS_MAX:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _keys(self, keys, plan: _Plan) -> dict[str, list]:
        needed = list(dict.fromkeys(k for v, _ in plan.views for k in v.join_keys))
        if not isinstance(keys, dict):
            if len(needed) != 1:
                raise BadRequest(f"these views are keyed by {needed}: pass keys as {{name: [values]}}")
            keys = {needed[0]: keys}
        missing = [k for k in needed if k not in keys]
        if missing:
            raise BadRequest(f"missing join key {missing[0]} (the requested views are keyed by {needed})")
        lengths = {len(keys[k]) for k in needed}
        if len(lengths) > 1:
            raise BadRequest(f"join key lists differ in length: {({k: len(keys[k]) for k in needed})}")
        out = {}
        for k in needed:
            data_type, cast = plan.key_types[k]
            try:
                out[k] = [None if x is None else cast(x) for x in keys[k]]
            except (TypeError, ValueError):
                raise BadRequest(f"join key {k} is {data_type}; got {list(keys[k])[:5]!r}") from None
            if cast is int and any(isinstance(x, bool) or (isinstance(x, float) and x != int(x)) for x in keys[k]):
                raise BadRequest(f"join key {k} is {data_type}; got {list(keys[k])[:5]!r}")
        return out

    def _stored(self, view: FeatureViewSpec, rows: list[tuple], names: list[str], as_of: datetime) -> dict[str, list]:
        from skewless.serving.online_reads import reader_for

        wanted = [row for row in rows if None not in row]
        reader = reader_for(self.store)
        if reader is not None:  # one round trip for every key, decoded without protos
            results = iter(reader.read_view(self._tables[view.name], wanted, list(names)) if wanted else [])
        else:
            entity_key, value, _ = _protos()
            fields, join_keys = self._key_fields[view.name], view.join_keys
            entity_keys = [entity_key(join_keys=join_keys, entity_values=[value(**{f: x}) for f, x in zip(fields, row)])
                           for row in wanted]
            # a copy: Feast's Redis read appends its timestamp field to the list it is given
            results = ((ts, values and {n: _python(values.get(n)) for n in names}) for ts, values in
                       self._provider.online_read(self.store.config, self._tables[view.name], entity_keys,
                                                  list(names))) if entity_keys else iter([])
        oldest = as_of - view.ttl if view.ttl else None
        oldest_utc = oldest.replace(tzinfo=timezone.utc) if oldest is not None else None
        found: list[list | None] = []
        for row in rows:
            if None in row:
                found.append(None)
                continue
            ts, values = next(results)
            if values is None or (oldest is not None and ts is not None
                                  and ts < (oldest_utc if ts.tzinfo is not None else oldest)):
                found.append(None)  # no value, or expired at as_of
                continue
            found.append([values.get(name) for name in names])
        return {name: [v[i] if v is not None else None for v in found] for i, name in enumerate(names)}

    def _fresh(self, view: FeatureViewSpec, rows: list[tuple], names: list[str], as_of: datetime) -> dict[str, list]:
        if self._queries is None:
            self._queries = load_online_sql(self.project, self.spec, views=[v.name for v in self.fresh])
        if self._events is None:
            self._events = open_event_store(self.project)
        wanted = list(dict.fromkeys(r for r in rows if None not in r))  # distinct key tuples
        if not wanted:
            return {name: [None] * len(rows) for name in names}
        params = {"as_of": as_of, **{k: [r[i] for r in wanted] for i, k in enumerate(view.join_keys)}}
        found = {tuple(r[k] for k in view.join_keys): r
                 for r in self._events.query(self._queries[view.name], params)}
        values = [found.get(r) for r in rows]
        return {name: [v.get(name) if v else None for v in values] for name in names}

    def close(self) -> None:
        if self._events is not None:
            self._events.close()


@cache
def _protos():
    """Feast's EntityKey and Value messages and its Value -> Python conversion (imported on first
    use, not with this module: the CLI imports it)."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import feast_value_type_to_python_type

    return EntityKey, Value, feast_value_type_to_python_type


_SCALARS = frozenset({"int32_val", "int64_val", "double_val", "float_val", "string_val", "bool_val", "bytes_val"})


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
