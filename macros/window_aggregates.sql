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
  DuckDB: count/sum/avg from running totals read with ASOF JOINs at t and t - w; min/max/
  count_distinct from RANGE window frames over spine points merged into the event stream;
  last from one ASOF JOIN. No spine x events range join. Portable: a range join of distinct
  spine points to events with conditional aggregates.
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

{% macro duckdb__window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where) -%}
{%- set k = keys | join(', ') -%}
{%- set inv = aggregates | selectattr('fn', 'in', ['count', 'sum', 'avg']) | list -%}
{%- set ranged = aggregates | selectattr('fn', 'in', ['min', 'max', 'count_distinct']) | list -%}
{%- set last = aggregates | selectattr('fn', 'equalto', 'last') | list -%}
with _sk_points as (
    select distinct {{ k }}, {{ spine_ts }} as _sk_t from {{ spine }}
    where {% for key in keys %}{{ key }} is not null and {% endfor %}{{ spine_ts }} is not null
),
_sk_ev as (
    select {{ k }}, {{ event_ts }} as _sk_ts
    {%- for agg in aggregates if agg.get('expr') %}, {{ agg['expr'] }} as _sk_x_{{ agg['name'] }}{% endfor %}
    from {{ events }}
    where {{ event_ts }} is not null{% if where %} and ({{ where }}){% endif %}
),
{%- if inv %}
_sk_running as (
    select {{ k }}, _sk_ts
    {%- for agg in inv %}
        {%- for part in (['n'] if agg['fn'] == 'count' else ['s', 'n']) %},
        sum(_sk_{{ part }}_{{ agg['name'] }}) over (partition by {{ k }} order by _sk_ts rows between unbounded preceding and current row) as _sk_{{ part }}_{{ agg['name'] }}
        {%- endfor %}
    {%- endfor %}
    from (
        select {{ k }}, _sk_ts
        {%- for agg in inv %}
            {%- if agg['fn'] == 'count' %}, {% if agg.get('expr') %}count(_sk_x_{{ agg['name'] }}){% else %}count(*){% endif %} as _sk_n_{{ agg['name'] }}
            {%- else %}, sum(_sk_x_{{ agg['name'] }}) as _sk_s_{{ agg['name'] }}, count(_sk_x_{{ agg['name'] }}) as _sk_n_{{ agg['name'] }}
            {%- endif %}
        {%- endfor %}
        from _sk_ev group by all
    )
),
_sk_inv as (
    select _sk_p.*
    {%- for label, duration in windows.items() %}{% for agg in inv %}
        {%- set n = 'coalesce(_sk_now._sk_n_' ~ agg['name'] ~ ', 0) - coalesce(_sk_w_' ~ label ~ '._sk_n_' ~ agg['name'] ~ ', 0)' %}
        {%- set s = 'coalesce(_sk_now._sk_s_' ~ agg['name'] ~ ', 0) - coalesce(_sk_w_' ~ label ~ '._sk_s_' ~ agg['name'] ~ ', 0)' %},
        {% if agg['fn'] == 'count' %}{{ n }}{% elif agg['fn'] == 'sum' %}case when {{ n }} > 0 then {{ s }} end{% else %}case when {{ n }} > 0 then cast({{ s }} as double precision) / ({{ n }}) end{% endif %} as {{ agg['name'] }}_{{ label }}
    {%- endfor %}{% endfor %}
    from _sk_points as _sk_p
    asof left join _sk_running as _sk_now
        on {% for key in keys %}_sk_now.{{ key }} = _sk_p.{{ key }} and {% endfor %}_sk_now._sk_ts <= _sk_p._sk_t
    {%- for label, duration in windows.items() %}
    asof left join _sk_running as _sk_w_{{ label }}
        on {% for key in keys %}_sk_w_{{ label }}.{{ key }} = _sk_p.{{ key }} and {% endfor -%}
           _sk_w_{{ label }}._sk_ts <= _sk_p._sk_t - {{ skewless.interval_literal(duration, 'window ' ~ label) }}
    {%- endfor %}
),
{%- endif %}
{%- if ranged %}
_sk_ranged as (
    select {{ k }}, _sk_ts as _sk_t
    {%- for label, duration in windows.items() %}{% for agg in ranged %},
        {% if agg['fn'] == 'count_distinct' %}count(distinct {% else %}{{ agg['fn'] }}({% endif %}_sk_x_{{ agg['name'] }}) over (
            partition by {{ k }} order by _sk_ts
            range between ({{ skewless.interval_literal(duration, 'window ' ~ label) }} - interval '1 microsecond') preceding and current row)
            as {{ agg['name'] }}_{{ label }}
    {%- endfor %}{% endfor %}
    from (
        select {{ k }}, _sk_t as _sk_ts, true as _sk_is_point
            {%- for agg in ranged %}, null as _sk_x_{{ agg['name'] }}{% endfor %}
        from _sk_points
        union all by name
        select {{ k }}, _sk_ts, false as _sk_is_point
            {%- for agg in ranged %}, _sk_x_{{ agg['name'] }}{% endfor %}
        from _sk_ev
    )
    qualify _sk_is_point
),
{%- endif %}
{%- if last %}
_sk_last as (
    select _sk_p.{{ keys | join(', _sk_p.') }}, _sk_p._sk_t
    {%- for label, duration in windows.items() %}{% for agg in last %},
        case when _sk_l_{{ agg['name'] }}._sk_ts > _sk_p._sk_t - {{ skewless.interval_literal(duration, 'window ' ~ label) }}
             then _sk_l_{{ agg['name'] }}._sk_x end as {{ agg['name'] }}_{{ label }}
    {%- endfor %}{% endfor %}
    from _sk_points as _sk_p
    {%- for agg in last %}
    asof left join (
        select {{ k }}, _sk_ts, max(_sk_x_{{ agg['name'] }}) as _sk_x
        from _sk_ev where _sk_x_{{ agg['name'] }} is not null group by all
    ) as _sk_l_{{ agg['name'] }}
        on {% for key in keys %}_sk_l_{{ agg['name'] }}.{{ key }} = _sk_p.{{ key }} and {% endfor %}_sk_l_{{ agg['name'] }}._sk_ts <= _sk_p._sk_t
    {%- endfor %}
),
{%- endif %}
_sk_point_aggs as (
    select _sk_points.*
    {%- for label in windows %}{% for agg in aggregates %},
        {% if agg in inv %}_sk_inv{% elif agg in ranged %}_sk_ranged{% else %}_sk_last{% endif %}.{{ agg['name'] }}_{{ label }}
    {%- endfor %}{% endfor %}
    from _sk_points
    {%- for part in (['_sk_inv'] if inv else []) + (['_sk_ranged'] if ranged else []) + (['_sk_last'] if last else []) %}
    left join {{ part }} using ({{ k }}, _sk_t)
    {%- endfor %}
)
{{ skewless._window_join_back(spine, keys, spine_ts, aggregates, windows) }}
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
