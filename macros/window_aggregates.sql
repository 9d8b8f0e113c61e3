{#-
  window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where=none,
                    rendering=none)

  Window aggregations anchored on the spine instant (docs/design.md section 6): for each spine
  row (keys k, instant t) and window w, aggregate the events of k with  t - w < event_ts <= t.
  The spine is preserved (every row, duplicates included, every column).

  Arguments:
    spine       a relation or CTE name holding the instants; it has `keys` and `spine_ts`.
    keys        join key columns, named the same in spine and events.
    events      a relation or CTE name of events; `event_ts` is their UTC timestamp.
    aggregates  list of {'name': n, 'fn': f, 'expr': sql, 'type': t}; `fn` is one of
                  count           rows (with `expr`: rows where expr is not NULL): bigint, 0 if none
                  sum             sum of expr: `type`, 0 if none
                  avg             mean of non-NULL expr: double, NULL if none
                  min, max        of expr: expr's type, NULL if none
                  count_distinct  distinct non-NULL values of expr: bigint, 0 if none
                  last            expr of the latest event with non-NULL expr (ties: the
                                  greatest value): expr's type, NULL if none
                `type` casts the result (DuckDB sums integers to HUGEINT: give sums a type).
                Each makes one column per window, named `<name>_<window label>`.
    windows     dict label -> duration, e.g. {'7d': '7d', '30d': '30d'}; labels are column suffixes.
    where       optional SQL predicate on event rows (e.g. "kind = 'nurture'").
    rendering   none: the adapter's own (portable in the `portable` and `online` render modes);
                'portable': force the portable rendering.

  Column names (keys, instants, outputs) are quoted; `expr` and `where` are SQL, used as written.
  A spine row with a NULL key or instant matches no events (counts 0, the rest NULL).
  DuckDB: count/sum/avg from running totals (the total at t minus the total at t - w, read with
  one ASOF JOIN for every point and window); min/max/count_distinct from RANGE frames (ordered
  by integer microseconds) over the spine points merged into the event stream; last from one
  ASOF JOIN. No spine x events range join. Running totals are exact for integers and decimals;
  for floating-point expressions a windowed sum or avg is within rounding of the running total.
  Portable: a range join of distinct spine points to events with conditional aggregates.
-#}
{% macro window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows,
                           where=none, rendering=none) -%}
  {%- do skewless._window_validate(aggregates, windows) -%}
  {%- set portable = rendering == 'portable' or skewless.render_mode() != 'offline' -%}
  {%- set render = skewless.default__window_aggregates if portable
                   else adapter.dispatch('window_aggregates', 'skewless') -%}
  {{ return(render(spine, keys, spine_ts, events, event_ts, aggregates, windows, where)) }}
{%- endmacro %}

{#- compile errors for an unknown fn, a fn without its expr, or a label that is no suffix -#}
{% macro _window_validate(aggregates, windows) -%}
  {%- set fns = ['count', 'sum', 'avg', 'min', 'max', 'count_distinct', 'last'] -%}
  {%- for agg in aggregates -%}
    {%- if agg.get('fn') not in fns -%}
      {{ exceptions.raise_compiler_error(
           "skewless.window_aggregates: aggregate '" ~ agg.get('name') ~ "' has fn '"
           ~ agg.get('fn') ~ "'; supported: " ~ fns | join(', ')) }}
    {%- endif -%}
    {%- if agg['fn'] != 'count' and not agg.get('expr') -%}
      {{ exceptions.raise_compiler_error(
           "skewless.window_aggregates: " ~ agg['fn'] ~ " aggregate '" ~ agg['name']
           ~ "' needs an 'expr'") }}
    {%- endif -%}
  {%- endfor -%}
  {%- for label in windows -%}
    {%- if not modules.re.fullmatch('[a-z0-9_]+', label) -%}
      {{ exceptions.raise_compiler_error(
           "skewless.window_aggregates: window label '" ~ label ~ "' must be lower-case"
           ~ " letters, digits and _ (it becomes a column suffix)") }}
    {%- endif -%}
  {%- endfor -%}
{%- endmacro %}

{#- the final value of one aggregate over one window, from the per-point column `col` -#}
{% macro _window_result(agg, col) -%}
  {%- set zero_when_empty = agg['fn'] in ['count', 'sum', 'count_distinct'] -%}
  {%- set default_types = {'count': 'bigint', 'count_distinct': 'bigint', 'avg': 'double'} -%}
  {%- set type = agg.get('type') or default_types.get(agg['fn']) -%}
  {%- set type = skewless.sql_type(type) if type else none -%}
  {%- set sql = 'coalesce(' ~ col ~ ', 0)' if zero_when_empty else col -%}
  {%- if type %}cast({{ sql }} as {{ type }}){% else %}{{ sql }}{% endif -%}
{%- endmacro %}

{#- the output column of aggregate `agg` over window `label`, unquoted -#}
{% macro _window_output(agg, label) -%}
  {{ return(agg['name'] ~ '_' ~ label) }}
{%- endmacro %}

{#- `<alias>."k1" = <other>."k1" and ...` for every key, ending in ' and ' -#}
{% macro _window_keys_equal(keys, alias, other) -%}
  {%- for key in keys -%}
    {{ skewless.column(alias, key) }} = {{ skewless.column(other, key) }} and {% endfor -%}
{%- endmacro %}

{#- `"k1" is not null and ...` for every key, ending in ' and ' -#}
{% macro _window_keys_not_null(keys) -%}
  {%- for key in keys %}{{ skewless.quote(key) }} is not null and {% endfor -%}
{%- endmacro %}

{# ------------------------------------------------------------------------------------------ #}
{#- DuckDB: count, sum and avg read running totals of each distinct expression (one window
    pass over the events) at every point's instant and every window's start with one ASOF
    JOIN; min, max and count_distinct are RANGE frames over the points merged into the event
    stream; last is one ASOF JOIN. -#}
{% macro duckdb__window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows,
                                   where) -%}
{%- set plan = skewless._window_duckdb_plan(aggregates) -%}
{%- set k = skewless.quote_all(keys) -%}
{#- every spine row, numbered once (materialized: each part joins back on _sk_p) -#}
with _sk_spine as materialized (
    select *, {{ skewless.quote(spine_ts) }} as _sk_t, row_number() over () as _sk_p
    from {{ spine }}
),
{#- the rows that can match events: a NULL key or instant matches none -#}
_sk_points as (
    select {{ k }}, _sk_t, _sk_p from _sk_spine
    where {{ skewless._window_keys_not_null(keys) }}_sk_t is not null
),
_sk_ev as (
    select {{ k }}, {{ skewless.quote(event_ts) }} as _sk_ts
    {%- for expr in plan['exprs'] %}, {{ expr }} as _sk_x{{ loop.index0 }}{% endfor %}
    from {{ events }}
    where {{ skewless.quote(event_ts) }} is not null{% if where %} and ({{ where }}){% endif %}
),
{%- if plan['inv'] %}
{{ skewless._window_duckdb_running_totals(keys, plan['totals']) }},
{{ skewless._window_duckdb_totals_at(keys, plan['totals'], windows) }},
{%- endif %}
{%- if plan['ranged'] %}
{{ skewless._window_duckdb_ranged(keys, plan, windows) }},
{%- endif %}
{%- if plan['last'] %}
{{ skewless._window_duckdb_last(keys, plan, windows) }},
{%- endif %}
{{ skewless._window_duckdb_point_aggs(aggregates, plan, windows) }}
select _sk_spine.* exclude (_sk_t, _sk_p)
{%- for label in windows %}{% for agg in aggregates %},
    {%- set out = skewless.quote(skewless._window_output(agg, label)) %}
    {{ skewless._window_result(agg, '_sk_pa.' ~ out) }} as {{ out }}
{%- endfor %}{% endfor %}
from _sk_spine
left join _sk_point_aggs as _sk_pa using (_sk_p)
{%- endmacro %}

{#- DuckDB: which aggregates read running totals (inv), RANGE frames (ranged) or the last
    event (last); each distinct expression as one column _sk_x<i> (`col`: aggregate name ->
    'x<i>', or 'one' for a count of rows); the running totals they read, each once:
    _sk_n_<col> (rows with a non-NULL value) and _sk_s_<col> (their sum) -#}
{% macro _window_duckdb_plan(aggregates) -%}
  {%- set exprs = [] -%}
  {%- for agg in aggregates if agg.get('expr') and agg['expr'] not in exprs -%}
    {%- do exprs.append(agg['expr']) -%}
  {%- endfor -%}
  {%- set col = {} -%}
  {%- for agg in aggregates -%}
    {%- set c = 'x' ~ exprs.index(agg['expr']) if agg.get('expr') else 'one' -%}
    {%- do col.update({agg['name']: c}) -%}
  {%- endfor -%}
  {%- set inv = aggregates | selectattr('fn', 'in', ['count', 'sum', 'avg']) | list -%}
  {%- set parts = {'count': ['n'], 'sum': ['s'], 'avg': ['s', 'n']} -%}
  {%- set totals = [] -%}
  {%- for agg in inv -%}
    {%- for part in parts[agg['fn']] -%}
      {%- set total = '_sk_' ~ part ~ '_' ~ col[agg['name']] -%}
      {%- if total not in totals %}{% do totals.append(total) %}{% endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- set ranged = aggregates | selectattr('fn', 'in', ['min', 'max', 'count_distinct']) | list -%}
  {%- set ranged_cols = [] -%}
  {%- for agg in ranged if col[agg['name']] not in ranged_cols -%}
    {%- do ranged_cols.append(col[agg['name']]) -%}
  {%- endfor -%}
  {{ return({'exprs': exprs, 'col': col, 'inv': inv, 'totals': totals, 'ranged': ranged,
             'ranged_cols': ranged_cols,
             'last': aggregates | selectattr('fn', 'equalto', 'last') | list}) }}
{%- endmacro %}

{#- the SQL of one running total over the window _sk_running: row_number() for the count of
    rows, count(_sk_x<i>) or sum(_sk_x<i>) otherwise -#}
{% macro _window_duckdb_total(total) -%}
  {%- if total == '_sk_n_one' -%}row_number()
  {%- elif total.startswith('_sk_s_') -%}sum(_sk_{{ total[6:] }})
  {%- else -%}count(_sk_{{ total[6:] }})
  {%- endif -%}
{%- endmacro %}

{#- running totals per event, on the last row of each timestamp (its total counts every
    event at that instant) -#}
{% macro _window_duckdb_running_totals(keys, totals) -%}
_sk_cum as (
    select {{ skewless.quote_all(keys) }}, _sk_ts
    {%- for total in totals %},
        {{ skewless._window_duckdb_total(total) }} over _sk_running as {{ total }}
    {%- endfor %}
    from _sk_ev
    window _sk_running as (partition by {{ skewless.quote_all(keys) }} order by _sk_ts
                           rows between unbounded preceding and current row)
    qualify lead(_sk_ts) over _sk_running is distinct from _sk_ts
)
{%- endmacro %}

{#- the totals at every point's instant (role 0) and at each window's start (role i), read
    with one ASOF JOIN and pivoted back to one row per point (_sk_p) -#}
{% macro _window_duckdb_totals_at(keys, totals, windows) -%}
{%- set k = skewless.quote_all(keys) -%}
_sk_totals as (
    select _sk_pr._sk_p
    {%- for role in range(windows | length + 1) %}{% for total in totals %},
        max(_sk_c.{{ total }}) filter (where _sk_pr._sk_role = {{ role }}) as {{ total }}_{{ role }}
    {%- endfor %}{% endfor %}
    from (
        select {{ k }}, _sk_p, _sk_t as _sk_at, 0 as _sk_role from _sk_points
    {%- for label, duration in windows.items() %}
        union all
        select {{ k }}, _sk_p, _sk_t - {{ skewless.interval_literal(duration, 'window ' ~ label) }},
               {{ loop.index }}
        from _sk_points
    {%- endfor %}
    ) as _sk_pr
    asof left join _sk_cum as _sk_c
        on {{ skewless._window_keys_equal(keys, '_sk_c', '_sk_pr') }}_sk_c._sk_ts <= _sk_pr._sk_at
    group by _sk_pr._sk_p
)
{%- endmacro %}

{#- RANGE frames over the points merged into the event stream, read at the point rows; the
    frame is ordered by integer microseconds (a constant offset: cheaper than an interval one) -#}
{% macro _window_duckdb_ranged(keys, plan, windows) -%}
{%- set k = skewless.quote_all(keys) -%}
_sk_ranged as (
    select _sk_p
    {%- for label, duration in windows.items() %}{% for agg in plan['ranged'] %},
        {%- set width = skewless.duration_seconds(duration, 'window ' ~ label) * 1000000 - 1 %}
        {{ 'count(distinct ' if agg['fn'] == 'count_distinct' else agg['fn'] ~ '(' -}}
        _sk_{{ plan['col'][agg['name']] }}) over (
            partition by {{ k }} order by _sk_us
            range between {{ width }} preceding and current row)
            as {{ skewless.quote(skewless._window_output(agg, label)) }}
    {%- endfor %}{% endfor %}
    from (
        select {{ k }}, epoch_us(_sk_ts) as _sk_us
        {%- for c in plan['ranged_cols'] %}, _sk_{{ c }}{% endfor %}
        from _sk_ev
        union all by name
        select {{ k }}, epoch_us(_sk_t) as _sk_us, _sk_p from _sk_points
    )
    qualify _sk_p is not null
)
{%- endmacro %}

{#- the latest non-NULL value at or before each point (ties: the greatest), kept when it is
    inside the window -#}
{% macro _window_duckdb_last(keys, plan, windows) -%}
_sk_last as (
    select _sk_pt._sk_p
    {%- for label, duration in windows.items() %}{% for agg in plan['last'] %},
        {%- set alias = '_sk_l' ~ loop.index %}
        case when {{ alias }}._sk_ts
                  > _sk_pt._sk_t - {{ skewless.interval_literal(duration, 'window ' ~ label) }}
             then {{ alias }}._sk_x end as {{ skewless.quote(skewless._window_output(agg, label)) }}
    {%- endfor %}{% endfor %}
    from _sk_points as _sk_pt
    {%- for agg in plan['last'] %}
    {%- set alias = '_sk_l' ~ loop.index %}
    asof left join (
        select {{ skewless.quote_all(keys) }}, _sk_ts, max(_sk_{{ plan['col'][agg['name']] }})
               as _sk_x
        from _sk_ev where _sk_{{ plan['col'][agg['name']] }} is not null group by all
    ) as {{ alias }}
        on {{ skewless._window_keys_equal(keys, alias, '_sk_pt') -}}
           {{ alias }}._sk_ts <= _sk_pt._sk_t
    {%- endfor %}
)
{%- endmacro %}

{#- one aggregate over the window of role `role` at a point, from the parts above -#}
{% macro _window_duckdb_point_value(agg, plan, role, label) -%}
  {%- set c = plan['col'][agg['name']] -%}
  {%- set n = 'coalesce(_sk_totals._sk_n_' ~ c ~ '_0, 0) - coalesce(_sk_totals._sk_n_'
              ~ c ~ '_' ~ role ~ ', 0)' -%}
  {%- set s = 'coalesce(_sk_totals._sk_s_' ~ c ~ '_0, 0) - coalesce(_sk_totals._sk_s_'
              ~ c ~ '_' ~ role ~ ', 0)' -%}
  {%- set out = skewless.quote(skewless._window_output(agg, label)) -%}
  {%- if agg['fn'] == 'count' -%}{{ n }}
  {%- elif agg['fn'] == 'sum' -%}{{ s }}
  {%- elif agg['fn'] == 'avg' -%}
    case when {{ n }} > 0 then cast({{ s }} as double precision) / ({{ n }}) end
  {%- elif agg['fn'] == 'last' -%}_sk_last.{{ out }}
  {%- else -%}_sk_ranged.{{ out }}
  {%- endif -%}
{%- endmacro %}

{#- every aggregate over every window, one row per point (_sk_p) -#}
{% macro _window_duckdb_point_aggs(aggregates, plan, windows) -%}
{%- set parts = (['_sk_totals'] if plan['inv'] else []) + (['_sk_ranged'] if plan['ranged'] else [])
                + (['_sk_last'] if plan['last'] else []) -%}
_sk_point_aggs as (
    select _sk_p
    {%- for label in windows %}{% set role = loop.index %}{% for agg in aggregates %},
        {{ skewless._window_duckdb_point_value(agg, plan, role, label) }}
        as {{ skewless.quote(skewless._window_output(agg, label)) }}
    {%- endfor %}{% endfor %}
    from _sk_points
    {%- for part in parts %}
    left join {{ part }} using (_sk_p)
    {%- endfor %}
)
{%- endmacro %}

{# ------------------------------------------------------------------------------------------ #}
{#- Portable: the distinct (keys, instant) points, range-joined to the events of the widest
    window, each aggregate a conditional aggregate per window, joined back to the spine. -#}
{% macro default__window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows,
                                    where) -%}
with _sk_points as (
    select distinct {{ skewless.quote_all(keys) }}, {{ skewless.quote(spine_ts) }} as _sk_t
    from {{ spine }}
    where {{ skewless._window_keys_not_null(keys) }}{{ skewless.quote(spine_ts) }} is not null
),
{{ skewless._window_portable_pairs(keys, events, event_ts, aggregates, windows, where) }},
_sk_in_window as (
    select _sk_pairs.*
    {%- for label, duration in windows.items() %},
        _sk_ts > _sk_t - {{ skewless.interval_literal(duration, 'window ' ~ label) }}
        as _sk_in_{{ label }}
    {%- endfor %}
    from _sk_pairs
),
{{ skewless._window_portable_ranked_last(keys, aggregates, windows) }},
{{ skewless._window_portable_point_aggs(keys, aggregates, windows) }}
{{ skewless._window_join_back(spine, keys, spine_ts, aggregates, windows) }}
{%- endmacro %}

{#- every (point, event) pair with the event inside the widest window; each aggregate's
    expression as _sk_x<i> -#}
{% macro _window_portable_pairs(keys, events, event_ts, aggregates, windows, where) -%}
{%- set ts = skewless.quote(event_ts) -%}
_sk_pairs as (
    select {{ skewless.quote_all(keys, '_sk_p.') }}, _sk_p._sk_t, _sk_e.{{ ts }} as _sk_ts
    {%- for agg in aggregates if agg.get('expr') %}, _sk_e._sk_x{{ loop.index0 }}{% endfor %}
    from _sk_points as _sk_p
    join (
        select {{ skewless.quote_all(keys) }}, {{ ts }}
        {%- for agg in aggregates if agg.get('expr') %},
               {{ agg['expr'] }} as _sk_x{{ loop.index0 }}
        {%- endfor %}
        from {{ events }}
        where {{ ts }} is not null{% if where %} and ({{ where }}){% endif %}
    ) as _sk_e
      on {{ skewless._window_keys_equal(keys, '_sk_e', '_sk_p') -}}
         _sk_e.{{ ts }} <= _sk_p._sk_t
     and _sk_e.{{ ts }} > _sk_p._sk_t - {{ skewless.interval_literal(
                                              skewless.widest_duration(windows.values())) }}
)
{%- endmacro %}

{#- the expression column of an aggregate in the portable rendering ('1' for a row count) -#}
{% macro _window_portable_x(aggregates, agg) -%}
  {%- set with_expr = aggregates | selectattr('expr') | list -%}
  {{ return('_sk_x' ~ with_expr.index(agg) if agg.get('expr') else '1') }}
{%- endmacro %}

{#- for each `last` aggregate and window, the rank of each pair: 1 for the latest event inside
    the window with a non-NULL value (ties: the greatest value) -#}
{% macro _window_portable_ranked_last(keys, aggregates, windows) -%}
_sk_ranked_last as (
    select _sk_in_window.*
    {%- for label in windows %}{% for agg in aggregates if agg['fn'] == 'last' %},
        {%- set x = skewless._window_portable_x(aggregates, agg) %}
        row_number() over (partition by {{ skewless.quote_all(keys) }}, _sk_t
                           order by case when _sk_in_{{ label }} and {{ x }} is not null
                                         then 0 else 1 end,
                                    _sk_ts desc, {{ x }} desc) as _sk_rank_{{ x }}_{{ label }}
    {%- endfor %}{% endfor %}
    from _sk_in_window
)
{%- endmacro %}

{#- one conditional aggregate over window `label` -#}
{% macro _window_portable_value(aggregates, agg, label) -%}
  {%- set x = skewless._window_portable_x(aggregates, agg) -%}
  {%- set inside = 'case when _sk_in_' ~ label ~ ' then ' ~ x ~ ' end' -%}
  {%- if agg['fn'] == 'count' -%}count({{ inside }})
  {%- elif agg['fn'] == 'count_distinct' -%}count(distinct {{ inside }})
  {%- elif agg['fn'] == 'last' -%}
    max(case when _sk_rank_{{ x }}_{{ label }} = 1 and _sk_in_{{ label }} then {{ x }} end)
  {%- elif agg['fn'] == 'avg' -%}avg(cast({{ inside }} as {{ skewless.sql_type('double') }}))
  {%- else -%}{{ agg['fn'] }}({{ inside }})
  {%- endif -%}
{%- endmacro %}

{#- every aggregate over every window, one row per distinct point (keys, _sk_t) -#}
{% macro _window_portable_point_aggs(keys, aggregates, windows) -%}
_sk_point_aggs as (
    select _sk_points.*
    {%- for label in windows %}{% for agg in aggregates %},
        {{ skewless._window_portable_value(aggregates, agg, label) }}
        as {{ skewless.quote(skewless._window_output(agg, label)) }}
    {%- endfor %}{% endfor %}
    from _sk_points
    left join _sk_ranked_last as _sk_r
      on {{ skewless._window_keys_equal(keys, '_sk_r', '_sk_points') -}}
         _sk_r._sk_t = _sk_points._sk_t
    group by {{ skewless.quote_all(keys, '_sk_points.') }}, _sk_points._sk_t
)
{%- endmacro %}

{#- the spine joined back to per-point results `_sk_point_aggs` (keys, _sk_t, outputs) -#}
{% macro _window_join_back(spine, keys, spine_ts, aggregates, windows) -%}
select _sk_spine.*
{%- for label in windows %}{% for agg in aggregates %},
    {%- set out = skewless.quote(skewless._window_output(agg, label)) %}
    {{ skewless._window_result(agg, '_sk_pa.' ~ out) }} as {{ out }}
{%- endfor %}{% endfor %}
from {{ spine }} as _sk_spine
left join _sk_point_aggs as _sk_pa
    on {{ skewless._window_keys_equal(keys, '_sk_pa', '_sk_spine') -}}
       _sk_pa._sk_t = {{ skewless.column('_sk_spine', spine_ts) }}
{%- endmacro %}
