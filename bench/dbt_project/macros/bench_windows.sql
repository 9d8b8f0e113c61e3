{#- The benchmark's window_aggregates call: 3 windows x count, sum, avg (running totals read with
    one ASOF JOIN) and, unless with_max=false, max (RANGE frames). -#}
{% macro bench_windows(with_max=true) -%}
{%- set aggregates = [{'name': 'n', 'fn': 'count'},
                      {'name': 'total', 'fn': 'sum', 'expr': 'amount', 'type': 'bigint'},
                      {'name': 'mean', 'fn': 'avg', 'expr': 'amount'}] -%}
{%- if with_max %}{% do aggregates.append({'name': 'hi', 'fn': 'max', 'expr': 'amount'}) %}{% endif -%}
{{ skewless.window_aggregates(
    spine=ref('spine'), keys=['k'], spine_ts='t', events=ref('events'), event_ts='ts',
    aggregates=aggregates, windows={'1d': '1d', '7d': '7d', '30d': '30d'}) }}
{%- endmacro %}
