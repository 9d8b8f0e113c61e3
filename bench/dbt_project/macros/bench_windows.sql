{#- The benchmark's window_aggregates call: 3 windows x count, sum, avg (running totals read with
    one ASOF JOIN) and max (RANGE frames); with_running=false or with_max=false leaves out one
    part, to time the other alone. -#}
{% macro bench_windows(with_running=true, with_max=true) -%}
{%- set aggregates = [] -%}
{%- if with_running %}
  {%- do aggregates.extend([{'name': 'n', 'fn': 'count'},
                            {'name': 'total', 'fn': 'sum', 'expr': 'amount', 'type': 'bigint'},
                            {'name': 'mean', 'fn': 'avg', 'expr': 'amount'}]) -%}
{%- endif %}
{%- if with_max %}{% do aggregates.append({'name': 'hi', 'fn': 'max', 'expr': 'amount'}) %}{% endif -%}
{{ skewless.window_aggregates(
    spine=ref('spine'), keys=['k'], spine_ts='t', events=ref('events'), event_ts='ts',
    aggregates=aggregates, windows={'1d': '1d', '7d': '7d', '30d': '30d'}) }}
{%- endmacro %}
