{#-
  The materialization grid: instants that are whole multiples of a cadence `step` since
  1970-01-01 00:00 UTC, before the epoch too (floor division, never truncation toward zero:
  1969-12-31 22:00:00.000001 rounds up to 23:00 on a 1h grid and down to 22:00).
  `step` is an interval literal (skewless.interval_literal).
-#}

{#- floor_to_cadence(expr, step): the last instant on the `step` grid at or before expr. -#}
{% macro floor_to_cadence(expr, step) -%}
  {{ return(adapter.dispatch('floor_to_cadence', 'skewless')(expr, step)) }}
{%- endmacro %}

{% macro duckdb__floor_to_cadence(expr, step) -%}
  time_bucket({{ step }}, {{ expr }}, timestamp '1970-01-01')
{%- endmacro %}

{#- extract(epoch) is numeric (exact) on PostgreSQL 14+, so floor() rounds down exactly -#}
{% macro default__floor_to_cadence(expr, step) -%}
  (timestamp '1970-01-01'
   + floor(extract(epoch from {{ expr }}) / extract(epoch from {{ step }})) * {{ step }})
{%- endmacro %}

{#- ceil_to_cadence(expr, step): the first instant on the `step` grid at or after expr. -#}
{% macro ceil_to_cadence(expr, step) -%}
  {{ return(adapter.dispatch('ceil_to_cadence', 'skewless')(expr, step)) }}
{%- endmacro %}

{% macro duckdb__ceil_to_cadence(expr, step) -%}
  (case when time_bucket({{ step }}, {{ expr }}, timestamp '1970-01-01') = {{ expr }}
        then {{ expr }}
        else time_bucket({{ step }}, {{ expr }}, timestamp '1970-01-01') + {{ step }} end)
{%- endmacro %}

{% macro default__ceil_to_cadence(expr, step) -%}
  (timestamp '1970-01-01'
   + ceil(extract(epoch from {{ expr }}) / extract(epoch from {{ step }})) * {{ step }})
{%- endmacro %}

{#- Spark: integer arithmetic on epoch microseconds (pmod is never negative for a positive step,
    so instants before 1970 round down and up like the others); no extract(epoch) in Spark SQL -#}
{% macro spark__floor_to_cadence(expr, step) -%}
  {%- set us = 'unix_micros(' ~ expr ~ ')' -%}
  {%- set step_us = 'unix_micros(timestamp_micros(0) + ' ~ step ~ ')' -%}
  timestamp_micros({{ us }} - pmod({{ us }}, {{ step_us }}))
{%- endmacro %}

{% macro spark__ceil_to_cadence(expr, step) -%}
  {%- set us = 'unix_micros(' ~ expr ~ ')' -%}
  {%- set step_us = 'unix_micros(timestamp_micros(0) + ' ~ step ~ ')' -%}
  timestamp_micros({{ us }} - pmod({{ us }}, {{ step_us }})
                   + case when pmod({{ us }}, {{ step_us }}) = 0 then 0 else {{ step_us }} end)
{%- endmacro %}
