{#-
  window_ticks(keys, events, windows, cadence, as_of=none)

  The materialization ticks at which spine-anchored window features of each key can change:
  a tick is an instant on the `cadence` grid (e.g. every hour); the value of a window w at
  tick T covers events with T - w < ts <= T, so it changes only at the first tick at or after
  an event (the event enters) and at the first tick at or after ts + w (it leaves). Evaluating
  `window_aggregates` at these ticks gives a feature view whose as-of value at any instant t
  equals the aggregate at the last tick <= t: exactly what an online store materialized on the
  same cadence serves, so training sees the staleness serving sees (DESIGN section 2).

  Arguments:
    keys     join key columns shared by every event relation.
    events   list of {'relation': relation or CTE name, 'ts': its UTC timestamp column}.
    windows  durations ('7d', '30d', ...): the same windows `window_aggregates` computes.
    cadence  tick spacing ('1h', '1d', ...), aligned to the epoch; none: exact change points (an
             event's own instant and instant + w), so the value at any t is exact: the
             definition of a fresh feature computed at request time (`serve: sql`).
    as_of    the last instant the data is complete at (default: var('skewless_as_of'), else the
             latest event); ticks after it are not emitted, since later events may still come.

  Returns rows (keys..., tick_ts) unique per key and tick; the comments `skewless:key` and
  `skewless:instant` mark the spine for `skewless check`'s lineage. In the online render mode
  (`render_mode`), the requested keys (`$<key>` lists) at the last tick <= `$as_of` instead.
-#}
{% macro window_ticks(keys, events, windows, cadence, as_of=none) -%}
  {%- set as_of = as_of or var('skewless_as_of', none) -%}
  {%- set step = skewless.interval_literal(cadence, 'cadence') if cadence else none -%}
  {%- set online = skewless.render_mode() == 'online' -%}
with _sk_event_ts as (
  {%- for ev in events %}
    select {{ keys | join(', ') }}, {{ ev['ts'] }} as _sk_ts from {{ ev['relation'] }} where {{ ev['ts'] }} is not null
    {%- if not loop.last %} union all{% endif %}
  {%- endfor %}
){% if online %},
_sk_request as (
    select {% for key in keys %}unnest(${{ key }}) as {{ key }}{% if not loop.last %}, {% endif %}{% endfor %}
)
{#- online: the requested keys at the last tick at or before $as_of (what the store serves then);
    a key with no event up to that tick has no row, as offline (its features are NULL) -#}
select {% for key in keys %}_sk_request.{{ key }} /* skewless:key */, {% endfor %}{{ skewless._tick_floor('cast($as_of as timestamp)', step) }} /* skewless:instant */ as tick_ts
from _sk_request
where exists (
    select 1 from _sk_event_ts
    where {% for key in keys %}_sk_event_ts.{{ key }} = _sk_request.{{ key }} and {% endfor -%}
          _sk_event_ts._sk_ts <= {{ skewless._tick_floor('cast($as_of as timestamp)', step) }})
{%- else %},
_sk_changes as (
    select {{ keys | join(', ') }}, _sk_ts as _sk_change from _sk_event_ts
  {%- for duration in windows %}
    union all
    select {{ keys | join(', ') }}, _sk_ts + {{ skewless.interval_literal(duration, 'window') }} from _sk_event_ts
  {%- endfor %}
)
select distinct {% for key in keys %}{{ key }} /* skewless:key */, {% endfor %}{{ skewless._tick_ceil('_sk_change', step) }} /* skewless:instant */ as tick_ts
from _sk_changes
where {{ skewless._tick_ceil('_sk_change', step) }} <= {% if as_of %}cast('{{ as_of }}' as timestamp){% else %}(select max(_sk_ts) from _sk_event_ts){% endif %}
{%- endif %}
{%- endmacro %}

{#- the tick at or before / at or after expr; with no cadence, expr itself -#}
{% macro _tick_floor(expr, step) -%}
  {{ return(skewless.floor_to_cadence(expr, step) if step else expr) }}
{%- endmacro %}

{% macro _tick_ceil(expr, step) -%}
  {{ return(skewless.ceil_to_cadence(expr, step) if step else expr) }}
{%- endmacro %}

{#- ceil_to_cadence(expr, step): the first instant on the `step` grid at or after expr. -#}
{% macro ceil_to_cadence(expr, step) -%}
  {{ return(adapter.dispatch('ceil_to_cadence', 'skewless')(expr, step)) }}
{%- endmacro %}

{% macro duckdb__ceil_to_cadence(expr, step) -%}
  (case when time_bucket({{ step }}, {{ expr }}, timestamp '1970-01-01') = {{ expr }} then {{ expr }}
        else time_bucket({{ step }}, {{ expr }}, timestamp '1970-01-01') + {{ step }} end)
{%- endmacro %}

{% macro default__ceil_to_cadence(expr, step) -%}
  (timestamp '1970-01-01' + ceil(extract(epoch from {{ expr }}) / extract(epoch from {{ step }}))
                            * {{ step }})
{%- endmacro %}
