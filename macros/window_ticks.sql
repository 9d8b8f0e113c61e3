{#-
  window_ticks(keys, events, windows, cadence, as_of=none)

  The instants at which spine-anchored window features of each key can change: a tick is an
  instant on the `cadence` grid (e.g. every hour); the value of a window w at tick T covers
  events with T - w < ts <= T, so it changes only at the first tick at or after an event (the
  event enters) and at the first tick at or after ts + w (it leaves: the window "decays").
  Evaluating `window_aggregates` at these ticks gives a feature view whose as-of value at any
  instant t equals the aggregate at the last tick <= t: exactly what an online store
  materialized on the same cadence serves, so training sees the staleness serving sees
  (docs/design.md section 2). Decay ticks after the last event are emitted too (a window
  empties after its last event leaves it), so the view agrees with the online SQL at every
  instant, past the data's last event included.

  Arguments:
    keys     join key columns shared by every event relation.
    events   list of {'relation': relation or CTE name, 'ts': its UTC timestamp column}.
    windows  durations ('7d', '30d', ...): the same windows `window_aggregates` computes.
    cadence  tick spacing ('1h', '1d', ...), aligned to the epoch; none: exact change points (an
             event's own instant and instant + w), so the value at any t is exact: the
             definition of a fresh feature computed at request time (`serve: sql`).
    as_of    optional: the last instant the data is complete at (default:
             var('skewless_as_of')); when set, ticks after it are not emitted. Unset: every
             change tick, decay ticks after the last event included.

  Returns rows (keys..., tick_ts) unique per key and tick; the comments `skewless:key` and
  `skewless:instant` mark the spine for `skewless check`'s lineage. In the online render mode
  (`render_mode`), the requested keys (`$<key>` lists) at the last tick <= `$as_of` instead: a
  key has a row when it has an event at or before that tick (an event long before it still
  gives a row: windows that have emptied are 0, not NULL, so no lower time bound applies). Each
  event read is filtered by `key = any($<key>)` per key (for composite keys a superset; the
  EXISTS pairs them exactly) and `ts <= tick` before the union, so a request reads only its
  keys' events (an index on (keys, ts) serves them).
-#}
{% macro window_ticks(keys, events, windows, cadence, as_of=none) -%}
  {%- set as_of = as_of or var('skewless_as_of', none) -%}
  {%- set step = skewless.interval_literal(cadence, 'cadence') if cadence else none -%}
{%- if skewless.render_mode() == 'online' %}
{{ skewless._ticks_online(keys, events, step) }}
{%- else %}
with _sk_event_ts as (
{{ skewless._ticks_event_times(keys, events) }}
),
{{ skewless._ticks_offline(keys, windows, step, as_of) }}
{%- endif %}
{%- endmacro %}

{#- every event instant of every event relation, with its keys: (keys..., _sk_ts) -#}
{% macro _ticks_event_times(keys, events) -%}
  {%- for ev in events %}
    select {{ skewless.quote_all(keys) }}, {{ skewless.quote(ev['ts']) }} as _sk_ts
    from {{ ev['relation'] }} where {{ skewless.quote(ev['ts']) }} is not null
    {%- if not loop.last %}
    union all{% endif %}
  {%- endfor %}
{%- endmacro %}

{#- offline: every change tick (an event enters or leaves a window), up to `as_of` if set -#}
{% macro _ticks_offline(keys, windows, step, as_of) -%}
_sk_changes as (
    select {{ skewless.quote_all(keys) }}, _sk_ts as _sk_change from _sk_event_ts
  {%- for duration in windows %}
    union all
    select {{ skewless.quote_all(keys) }},
           _sk_ts + {{ skewless.interval_literal(duration, 'window') }}
    from _sk_event_ts
  {%- endfor %}
)
select distinct
    {%- for key in keys %} {{ skewless.quote(key) }} /* skewless:key */,{% endfor %}
    {{ skewless._tick_ceil('_sk_change', step) }} /* skewless:instant */ as tick_ts
from _sk_changes
{%- if as_of %}
where {{ skewless._tick_ceil('_sk_change', step) }} <= cast('{{ as_of }}' as timestamp)
{%- endif %}
{%- endmacro %}

{#- online: the requested keys at the last tick at or before $as_of (what the store serves
    then); a key with no event up to that tick has no row, as offline (its features are NULL).
    Each event read keeps only the requested keys' events at or before the tick. -#}
{% macro _ticks_online(keys, events, step) -%}
{%- set tick = skewless._tick_floor('cast($as_of as timestamp)', step) -%}
with _sk_request as (
    select {% for key in keys -%}
      unnest(${{ key }}) as {{ skewless.quote(key) }}{{ ', ' if not loop.last }}
    {%- endfor %}
),
_sk_event_ts as (
  {%- for ev in events %}
    {%- set ts = skewless.quote(ev['ts']) %}
    select {{ skewless.quote_all(keys, '_sk_ev.') }}, _sk_ev.{{ ts }} as _sk_ts
    from {{ ev['relation'] }} as _sk_ev
    where _sk_ev.{{ ts }} <= {{ tick }}
    {%- for key in keys %}
      and {{ skewless.column('_sk_ev', key) }} = any(${{ key }})
    {%- endfor %}
    {%- if not loop.last %}
    union all{% endif %}
  {%- endfor %}
)
select
    {%- for key in keys %} {{ skewless.column('_sk_request', key) }} /* skewless:key */,{% endfor %}
    {{ tick }} /* skewless:instant */ as tick_ts
from _sk_request
where exists (
    select 1 from _sk_event_ts
    where {% for key in keys -%}
          {{ skewless.column('_sk_event_ts', key) }} = {{ skewless.column('_sk_request', key) }} and
          {% endfor -%}
          _sk_event_ts._sk_ts <= {{ tick }})
{%- endmacro %}

{#- the tick at or before / at or after expr; with no cadence, expr itself -#}
{% macro _tick_floor(expr, step) -%}
  {{ return(skewless.floor_to_cadence(expr, step) if step else expr) }}
{%- endmacro %}

{% macro _tick_ceil(expr, step) -%}
  {{ return(skewless.ceil_to_cadence(expr, step) if step else expr) }}
{%- endmacro %}
