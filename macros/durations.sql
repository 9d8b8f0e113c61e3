{#-
  Durations as the yml writes them ('90s', '15m', '12h', '30d', '2w'): the same grammar as
  skewless/durations.py, so the macros and the Python side read a ttl, lag, cadence or window
  the same way. Anything else is a compile error naming what the duration is for.
-#}

{#- duration_seconds(duration, context): '30d' -> 2592000. -#}
{% macro duration_seconds(duration, context='duration') -%}
  {%- set match = modules.re.fullmatch(' *([0-9]+) *([smhdw]) *', duration | string) -%}
  {%- if not match -%}
    {{ exceptions.raise_compiler_error(
         "skewless: " ~ context ~ " '" ~ duration
         ~ "' is not a duration like 90s, 15m, 12h, 30d or 2w") }}
  {%- endif -%}
  {%- set unit_seconds = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800} -%}
  {{ return(match.group(1) | int * unit_seconds[match.group(2)]) }}
{%- endmacro %}

{#- interval_literal(duration, context): '30d' -> interval '30 days'. -#}
{% macro interval_literal(duration, context='duration') -%}
  {%- do skewless.duration_seconds(duration, context) -%}
  {%- set match = modules.re.fullmatch(' *([0-9]+) *([smhdw]) *', duration | string) -%}
  {%- set units = {'s': 'seconds', 'm': 'minutes', 'h': 'hours', 'd': 'days', 'w': 'weeks'} -%}
  interval '{{ match.group(1) }} {{ units[match.group(2)] }}'
{%- endmacro %}

{#- widest_duration(durations): the longest of a list of durations, as written. -#}
{% macro widest_duration(durations) -%}
  {%- set ns = namespace(best=none, seconds=-1) -%}
  {%- for d in durations -%}
    {%- set s = skewless.duration_seconds(d) -%}
    {%- if s > ns.seconds -%}{%- set ns.best = d -%}{%- set ns.seconds = s -%}{%- endif -%}
  {%- endfor -%}
  {{ return(ns.best) }}
{%- endmacro %}
