{#-
  window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where=none,
                    rendering=none)

  Window aggregations anchored on the spine instant (DESIGN section 6): for each spine row
  (keys k, instant t) and window w, aggregate the events of k with  t - w < event_ts <= t.
  The spine is preserved (every row, every column); no events in the window gives 0.

  Arguments:
    spine       a relation or CTE name holding the instants; it has `keys` and `spine_ts`.
    keys        join key columns, named the same in spine and events.
    events      a relation or CTE name of events; `event_ts` is their UTC timestamp.
    aggregates  list of {'name': n, 'fn': 'count'} or {'name': n, 'fn': 'sum', 'expr': sql};
                optional 'type' casts the result (count defaults to bigint; DuckDB sums
                of integers are HUGEINT, so give sums a 'type' or the contract rejects them).
                Each makes one column per window, named `<name>_<window label>`.
    windows     dict label -> duration, e.g. {'7d': '7d', '30d': '30d'}.
    where       optional SQL predicate on event rows (e.g. "kind = 'nurture'").
    rendering   none: the adapter's own; 'portable': force the correlated-subquery rendering.

  DuckDB renders running totals per (key, event_ts) read at t and at t - w by native ASOF
  JOINs (no spine x events range join); other engines a correlated subquery per column.
-#}
{% macro window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where=none, rendering=none) -%}
  {%- for agg in aggregates -%}
    {%- if agg.get('fn') not in ['count', 'sum'] -%}
      {{ exceptions.raise_compiler_error("skewless.window_aggregates: aggregate '" ~ agg.get('name') ~ "' has fn '" ~ agg.get('fn') ~ "'; supported: count, sum") }}
    {%- endif -%}
    {%- if agg['fn'] == 'sum' and not agg.get('expr') -%}
      {{ exceptions.raise_compiler_error("skewless.window_aggregates: sum aggregate '" ~ agg['name'] ~ "' needs an 'expr'") }}
    {%- endif -%}
  {%- endfor -%}
  {%- for label in windows -%}
    {%- if not modules.re.fullmatch('[a-z0-9_]+', label) -%}
      {{ exceptions.raise_compiler_error("skewless.window_aggregates: window label '" ~ label ~ "' must be lower-case letters, digits and _ (it becomes a column suffix)") }}
    {%- endif -%}
  {%- endfor -%}
  {%- set render = skewless.default__window_aggregates if rendering == 'portable' else adapter.dispatch('window_aggregates', 'skewless') -%}
  {{ return(render(spine, keys, spine_ts, events, event_ts, aggregates, windows, where)) }}
{%- endmacro %}

{#- the aggregate's declared type: `type` if given, bigint for count, else as computed -#}
{% macro _window_cast(agg, sql) -%}
  {%- set type = agg.get('type') or ('bigint' if agg['fn'] == 'count' else none) -%}
  {%- if type %}cast({{ sql }} as {{ type }}){% else %}{{ sql }}{% endif -%}
{%- endmacro %}

{% macro _window_measure(agg) -%}
  {%- if agg['fn'] == 'count' -%}count(*){%- else -%}sum({{ agg['expr'] }}){%- endif -%}
{%- endmacro %}

{% macro duckdb__window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where) -%}
with _sk_running as (
    select {{ keys | join(', ') }}, _sk_ts
    {%- for agg in aggregates %},
        sum({{ agg['name'] }}) over (partition by {{ keys | join(', ') }} order by _sk_ts
                                     rows between unbounded preceding and current row) as {{ agg['name'] }}
    {%- endfor %}
    from (
        select {{ keys | join(', ') }}, {{ event_ts }} as _sk_ts
        {%- for agg in aggregates %}, {{ skewless._window_measure(agg) }} as {{ agg['name'] }}{% endfor %}
        from {{ events }}
        where {{ event_ts }} is not null{% if where %} and ({{ where }}){% endif %}
        group by all
    )
)
select _sk_spine.*
{%- for label, duration in windows.items() %}
{%- for agg in aggregates %},
    {{ skewless._window_cast(agg, 'coalesce(_sk_now.' ~ agg['name'] ~ ', 0) - coalesce(_sk_w_' ~ label ~ '.' ~ agg['name'] ~ ', 0)') }} as {{ agg['name'] }}_{{ label }}
{%- endfor %}
{%- endfor %}
from {{ spine }} as _sk_spine
asof left join _sk_running as _sk_now
    on {% for k in keys %}_sk_spine.{{ k }} = _sk_now.{{ k }} and {% endfor %}_sk_now._sk_ts <= _sk_spine.{{ spine_ts }}
{%- for label, duration in windows.items() %}
asof left join _sk_running as _sk_w_{{ label }}
    on {% for k in keys %}_sk_spine.{{ k }} = _sk_w_{{ label }}.{{ k }} and {% endfor -%}
       _sk_w_{{ label }}._sk_ts <= _sk_spine.{{ spine_ts }} - {{ skewless.interval_literal(duration, 'window ' ~ label) }}
{%- endfor %}
{%- endmacro %}

{% macro default__window_aggregates(spine, keys, spine_ts, events, event_ts, aggregates, windows, where) -%}
select _sk_spine.*
{%- for label, duration in windows.items() %}
{%- for agg in aggregates %},
    (select {{ skewless._window_cast(agg, 'coalesce(' ~ skewless._window_measure(agg) ~ ', 0)') }}
     from {{ events }} as _sk_e
     where {% for k in keys %}_sk_e.{{ k }} = _sk_spine.{{ k }} and {% endfor -%}
           _sk_e.{{ event_ts }} > _sk_spine.{{ spine_ts }} - {{ skewless.interval_literal(duration, 'window ' ~ label) }}
       and _sk_e.{{ event_ts }} <= _sk_spine.{{ spine_ts }}
       {%- if where %} and ({{ where }}){% endif %}) as {{ agg['name'] }}_{{ label }}
{%- endfor %}
{%- endfor %}
from {{ spine }} as _sk_spine
{%- endmacro %}
