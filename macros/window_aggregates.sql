{#-
  window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where=none,
                    rendering=none)

  Window aggregations anchored on the spine instant (DESIGN section 6): for each spine row
  (keys k, instant t) and window w, aggregate the events of k with  t - w < event_ts <= t.
  The spine is preserved (every row, duplicates included, every column).

  Arguments:
    spine       a relation or CTE name holding the instants; it has `keys` and `spine_ts`.
    keys        join key columns, named the same in spine and events.
    events      a relation or CTE name of events; `event_ts` is their UTC timestamp.
    aggregates  list of {'name': n, 'fn': f, 'expr': sql, 'type': t}; `fn` is one of
                  count           rows (with `expr`: rows where expr is not NULL)   -> bigint, 0 if none
                  sum             sum of expr                                         -> `type`, 0 if none
                  avg             mean of non-NULL expr                               -> double, NULL if none
                  min, max        of expr                                             -> expr's type, NULL if none
                  count_distinct  distinct non-NULL values of expr                    -> bigint, 0 if none
                  last            expr of the latest event with non-NULL expr
                                  (ties: the greatest value)                          -> expr's type, NULL if none
                `type` casts the result (DuckDB sums integers to HUGEINT: give sums a type).
                Each makes one column per window, named `<name>_<window label>`.
    windows     dict label -> duration, e.g. {'7d': '7d', '30d': '30d'}; labels are column suffixes.
    where       optional SQL predicate on event rows (e.g. "kind = 'nurture'").
    rendering   none: the adapter's own (portable in the `portable` and `online` render modes);
                'portable': force the portable rendering.

  A spine row with a NULL key or instant matches no events (counts 0, the rest NULL).
  DuckDB: count/sum/avg from running totals (the total at t minus the total at t - w, read with
  one ASOF JOIN for every point and window); min/max/count_distinct from RANGE frames (ordered
  by integer microseconds) over the spine points merged into the event stream; last from one
  ASOF JOIN.
  No spine x events range join. Running totals are exact for integers and decimals; for
  floating-point expressions a windowed sum or avg is within rounding of the running total.
  Portable: a range join of distinct spine points to events with conditional aggregates.
-#}
{% macro window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where=none, rendering=none) -%}
  {%- set fns = ['count', 'sum', 'avg', 'min', 'max', 'count_distinct', 'last'] -%}
  {%- for agg in aggregates -%}
    {%- if agg.get('fn') not in fns -%}
      {{ exceptions.raise_compiler_error("skewless.window_aggregates: aggregate '" ~ agg.get('name') ~ "' has fn '" ~ agg.get('fn') ~ "'; supported: " ~ fns | join(', ')) }}
    {%- endif -%}
    {%- if agg['fn'] != 'count' and not agg.get('expr') -%}
      {{ exceptions.raise_compiler_error("skewless.window_aggregates: " ~ agg['fn'] ~ " aggregate '" ~ agg['name'] ~ "' needs an 'expr'") }}
    {%- endif -%}
  {%- endfor -%}
  {%- for label in windows -%}
    {%- if not modules.re.fullmatch('[a-z0-9_]+', label) -%}
      {{ exceptions.raise_compiler_error("skewless.window_aggregates: window label '" ~ label ~ "' must be lower-case letters, digits and _ (it becomes a column suffix)") }}
    {%- endif -%}
  {%- endfor -%}
  {%- set portable = rendering == 'portable' or skewless.render_mode() != 'offline' -%}
  {%- set render = skewless.default__window_aggregates if portable else adapter.dispatch('window_aggregates', 'skewless') -%}
  {{ return(render(spine, keys, spine_ts, events, event_ts, aggregates, windows, where)) }}
{%- endmacro %}

{#- the final value of one aggregate over one window, from the per-point column `col` -#}
{% macro _window_result(agg, col) -%}
  {%- set zero_when_empty = agg['fn'] in ['count', 'sum', 'count_distinct'] -%}
  {%- set type = agg.get('type') or ('bigint' if agg['fn'] in ['count', 'count_distinct'] else ('double precision' if agg['fn'] == 'avg' else none)) -%}
  {%- set sql = 'coalesce(' ~ col ~ ', 0)' if zero_when_empty else col -%}
  {%- if type %}cast({{ sql }} as {{ type }}){% else %}{{ sql }}{% endif -%}
{%- endmacro %}

{#- the spine joined back to per-point results `_sk_point_aggs` (keys, _sk_t, <name>_<label>) -#}
{% macro _window_join_back(spine, keys, spine_ts, aggregates, windows) -%}
select _sk_spine.*
{%- for label in windows %}{% for agg in aggregates %},
    {{ skewless._window_result(agg, '_sk_pa.' ~ agg['name'] ~ '_' ~ label) }} as {{ agg['name'] }}_{{ label }}
{%- endfor %}{% endfor %}
from {{ spine }} as _sk_spine
left join _sk_point_aggs as _sk_pa
    on {% for k in keys %}_sk_pa.{{ k }} = _sk_spine.{{ k }} and {% endfor %}_sk_pa._sk_t = _sk_spine.{{ spine_ts }}
{%- endmacro %}

{#- DuckDB: count, sum and avg read running totals of each distinct expression (one window
    pass over the events) at every point's instant and every window's start with one ASOF
    JOIN; min, max and count_distinct are RANGE frames over the points merged into the event
    stream; last is one ASOF JOIN. -#}
{% macro duckdb__window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where) -%}
{%- set k = keys | join(', ') -%}
{%- set inv = aggregates | selectattr('fn', 'in', ['count', 'sum', 'avg']) | list -%}
{%- set ranged = aggregates | selectattr('fn', 'in', ['min', 'max', 'count_distinct']) | list -%}
{%- set last = aggregates | selectattr('fn', 'equalto', 'last') | list -%}
{#- each distinct expression is one column _sk_x<i>; a count without expr counts rows ('one') -#}
{%- set exprs = [] -%}
{%- for agg in aggregates if agg.get('expr') and agg['expr'] not in exprs %}{% do exprs.append(agg['expr']) %}{% endfor -%}
{%- set col = {} -%}
{%- for agg in aggregates %}{% do col.update({agg['name']: 'x' ~ exprs.index(agg['expr']) if agg.get('expr') else 'one'}) %}{% endfor -%}
{#- the running totals the count/sum/avg aggregates read, each once: _sk_n_<col> (rows with a
    non-NULL value), _sk_s_<col> (their sum; a window with none sums to 0 like an empty one) -#}
{%- set totals = [] -%}
{%- for agg in inv %}{% for part in {'count': ['n'], 'sum': ['s'], 'avg': ['s', 'n']}[agg['fn']] %}
  {%- if '_sk_' ~ part ~ '_' ~ col[agg['name']] not in totals %}{% do totals.append('_sk_' ~ part ~ '_' ~ col[agg['name']]) %}{% endif %}
{%- endfor %}{% endfor -%}
{#- every spine row, numbered once (materialized: each part joins back on _sk_p) -#}
with _sk_spine as materialized (
    select *, {{ spine_ts }} as _sk_t, row_number() over () as _sk_p from {{ spine }}
),
{#- the rows that can match events: a NULL key or instant matches none -#}
_sk_points as (
    select {{ k }}, _sk_t, _sk_p from _sk_spine
    where {% for key in keys %}{{ key }} is not null and {% endfor %}_sk_t is not null
),
_sk_ev as (
    select {{ k }}, {{ event_ts }} as _sk_ts
    {%- for expr in exprs %}, {{ expr }} as _sk_x{{ loop.index0 }}{% endfor %}
    from {{ events }}
    where {{ event_ts }} is not null{% if where %} and ({{ where }}){% endif %}
),
{%- if inv %}
{#- running totals per event, on the last row of each timestamp (its total counts every event
    at that instant); count(*) is the row number -#}
_sk_cum as (
    select {{ k }}, _sk_ts
    {%- for total in totals %},
        {{ 'row_number()' if total == '_sk_n_one' else ('sum' if total.startswith('_sk_s_') else 'count') ~ '(_sk_' ~ total[6:] ~ ')' }} over _sk_running as {{ total }}
    {%- endfor %}
    from _sk_ev
    window _sk_running as (partition by {{ k }} order by _sk_ts rows between unbounded preceding and current row)
    qualify lead(_sk_ts) over _sk_running is distinct from _sk_ts
),
{#- the totals at every point's instant (role 0) and at each window's start (role i), read
    with one ASOF JOIN and pivoted back to one row per point (_sk_p) -#}
_sk_totals as (
    select _sk_pr._sk_p
    {%- for role in range(windows | length + 1) %}{% for total in totals %},
        max(_sk_c.{{ total }}) filter (where _sk_pr._sk_role = {{ role }}) as {{ total }}_{{ role }}
    {%- endfor %}{% endfor %}
    from (
        select {{ k }}, _sk_p, _sk_t as _sk_at, 0 as _sk_role from _sk_points
    {%- for label, duration in windows.items() %}
        union all
        select {{ k }}, _sk_p, _sk_t - {{ skewless.interval_literal(duration, 'window ' ~ label) }}, {{ loop.index }} from _sk_points
    {%- endfor %}
    ) as _sk_pr
    asof left join _sk_cum as _sk_c
        on {% for key in keys %}_sk_c.{{ key }} = _sk_pr.{{ key }} and {% endfor %}_sk_c._sk_ts <= _sk_pr._sk_at
    group by _sk_pr._sk_p
),
{%- endif %}
{%- if ranged %}
{%- set ranged_cols = [] %}
{%- for agg in ranged if col[agg['name']] not in ranged_cols %}{% do ranged_cols.append(col[agg['name']]) %}{% endfor %}
{#- RANGE frames over the points merged into the event stream, read at the point rows; the
    frame is ordered by integer microseconds (a constant offset: cheaper than an interval one) -#}
_sk_ranged as (
    select _sk_p
    {%- for label, duration in windows.items() %}{% for agg in ranged %},
        {% if agg['fn'] == 'count_distinct' %}count(distinct {% else %}{{ agg['fn'] }}({% endif %}_sk_{{ col[agg['name']] }}) over (
            partition by {{ k }} order by _sk_us
            range between {{ skewless.duration_seconds(duration, 'window ' ~ label) * 1000000 - 1 }} preceding and current row)
            as {{ agg['name'] }}_{{ label }}
    {%- endfor %}{% endfor %}
    from (
        select {{ k }}, epoch_us(_sk_ts) as _sk_us
        {%- for c in ranged_cols %}, _sk_{{ c }}{% endfor %}
        from _sk_ev
        union all by name
        select {{ k }}, epoch_us(_sk_t) as _sk_us, _sk_p from _sk_points
    )
    qualify _sk_p is not null
),
{%- endif %}
{%- if last %}
_sk_last as (
    select _sk_pt._sk_p
    {%- for label, duration in windows.items() %}{% for agg in last %},
        case when _sk_l_{{ agg['name'] }}._sk_ts > _sk_pt._sk_t - {{ skewless.interval_literal(duration, 'window ' ~ label) }}
             then _sk_l_{{ agg['name'] }}._sk_x end as {{ agg['name'] }}_{{ label }}
    {%- endfor %}{% endfor %}
    from _sk_points as _sk_pt
    {%- for agg in last %}
    asof left join (
        select {{ k }}, _sk_ts, max(_sk_{{ col[agg['name']] }}) as _sk_x
        from _sk_ev where _sk_{{ col[agg['name']] }} is not null group by all
    ) as _sk_l_{{ agg['name'] }}
        on {% for key in keys %}_sk_l_{{ agg['name'] }}.{{ key }} = _sk_pt.{{ key }} and {% endfor %}_sk_l_{{ agg['name'] }}._sk_ts <= _sk_pt._sk_t
    {%- endfor %}
),
{%- endif %}
_sk_point_aggs as (
    select _sk_p
    {%- for label in windows %}{% set role = loop.index %}{% for agg in aggregates %},
        {%- set c = col[agg['name']] %}
        {%- set n = 'coalesce(_sk_totals._sk_n_' ~ c ~ '_0, 0) - coalesce(_sk_totals._sk_n_' ~ c ~ '_' ~ role ~ ', 0)' %}
        {%- set s = 'coalesce(_sk_totals._sk_s_' ~ c ~ '_0, 0) - coalesce(_sk_totals._sk_s_' ~ c ~ '_' ~ role ~ ', 0)' %}
        {% if agg['fn'] == 'count' %}{{ n }}
        {%- elif agg['fn'] == 'sum' %}{{ s }}
        {%- elif agg['fn'] == 'avg' %}case when {{ n }} > 0 then cast({{ s }} as double precision) / ({{ n }}) end
        {%- elif agg in ranged %}_sk_ranged.{{ agg['name'] }}_{{ label }}
        {%- else %}_sk_last.{{ agg['name'] }}_{{ label }}{% endif %} as {{ agg['name'] }}_{{ label }}
    {%- endfor %}{% endfor %}
    from _sk_points
    {%- for part in (['_sk_totals'] if inv else []) + (['_sk_ranged'] if ranged else []) + (['_sk_last'] if last else []) %}
    left join {{ part }} using (_sk_p)
    {%- endfor %}
)
select _sk_spine.* exclude (_sk_t, _sk_p)
{%- for label in windows %}{% for agg in aggregates %},
    {{ skewless._window_result(agg, '_sk_pa.' ~ agg['name'] ~ '_' ~ label) }} as {{ agg['name'] }}_{{ label }}
{%- endfor %}{% endfor %}
from _sk_spine
left join _sk_point_aggs as _sk_pa using (_sk_p)
{%- endmacro %}

{% macro default__window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where) -%}
{%- set k = keys | join(', ') -%}
with _sk_points as (
    select distinct {{ k }}, {{ spine_ts }} as _sk_t from {{ spine }}
    where {% for key in keys %}{{ key }} is not null and {% endfor %}{{ spine_ts }} is not null
),
_sk_pairs as (
    select _sk_p.{{ keys | join(', _sk_p.') }}, _sk_p._sk_t, _sk_e.{{ event_ts }} as _sk_ts
    {%- for agg in aggregates if agg.get('expr') %}, _sk_e._sk_x_{{ agg['name'] }}{% endfor %}
    from _sk_points as _sk_p
    join (
        select {{ k }}, {{ event_ts }}
        {%- for agg in aggregates if agg.get('expr') %}, {{ agg['expr'] }} as _sk_x_{{ agg['name'] }}{% endfor %}
        from {{ events }}
        where {{ event_ts }} is not null{% if where %} and ({{ where }}){% endif %}
    ) as _sk_e
      on {% for key in keys %}_sk_e.{{ key }} = _sk_p.{{ key }} and {% endfor -%}
         _sk_e.{{ event_ts }} <= _sk_p._sk_t
     and _sk_e.{{ event_ts }} > _sk_p._sk_t - {{ skewless.interval_literal(skewless.widest_duration(windows.values())) }}
),
_sk_in_window as (
    select _sk_pairs.*
    {%- for label, duration in windows.items() %},
        _sk_ts > _sk_t - {{ skewless.interval_literal(duration, 'window ' ~ label) }} as _sk_in_{{ label }}
    {%- endfor %}
    from _sk_pairs
),
_sk_ranked_last as (
    select _sk_in_window.*
    {%- for label in windows %}{% for agg in aggregates if agg['fn'] == 'last' %},
        row_number() over (partition by {{ k }}, _sk_t
                           order by case when _sk_in_{{ label }} and _sk_x_{{ agg['name'] }} is not null then 0 else 1 end,
                                    _sk_ts desc, _sk_x_{{ agg['name'] }} desc) as _sk_rank_{{ agg['name'] }}_{{ label }}
    {%- endfor %}{% endfor %}
    from _sk_in_window
),
_sk_point_aggs as (
    select _sk_points.*
    {%- for label in windows %}{% for agg in aggregates %}
        {%- set x = '_sk_x_' ~ agg['name'] if agg.get('expr') else '1' %}
        {%- set inside = 'case when _sk_in_' ~ label ~ ' then ' ~ x ~ ' end' %},
        {% if agg['fn'] == 'count' %}count({{ inside }})
        {%- elif agg['fn'] == 'count_distinct' %}count(distinct {{ inside }})
        {%- elif agg['fn'] == 'last' %}max(case when _sk_rank_{{ agg['name'] }}_{{ label }} = 1 and _sk_in_{{ label }} then {{ x }} end)
        {%- elif agg['fn'] == 'avg' %}avg(cast({{ inside }} as double precision))
        {%- else %}{{ agg['fn'] }}({{ inside }}){% endif %} as {{ agg['name'] }}_{{ label }}
    {%- endfor %}{% endfor %}
    from _sk_points
    left join _sk_ranked_last as _sk_r
      on {% for key in keys %}_sk_r.{{ key }} = _sk_points.{{ key }} and {% endfor %}_sk_r._sk_t = _sk_points._sk_t
    group by _sk_points.{{ keys | join(', _sk_points.') }}, _sk_points._sk_t
)
{{ skewless._window_join_back(spine, keys, spine_ts, aggregates, windows) }}
{%- endmacro %}
