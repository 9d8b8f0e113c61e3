{#- the window_aggregates call shared by pit_windows and pit_windows_portable -#}
{% macro conformance_windows(rendering=none, spine=none, spine_ts='event_timestamp') -%}
{{ skewless.window_aggregates(
    spine=spine or ref('spine'), keys=['driver_id'], spine_ts=spine_ts,
    events=source('conformance', 'src_events'), event_ts='event_timestamp',
    aggregates=[
        {'name': 'n', 'fn': 'count'},
        {'name': 'n_amount', 'fn': 'count', 'expr': 'amount'},
        {'name': 'total', 'fn': 'sum', 'expr': 'amount', 'type': 'bigint'},
        {'name': 'mean', 'fn': 'avg', 'expr': 'amount'},
        {'name': 'lo', 'fn': 'min', 'expr': 'amount'},
        {'name': 'hi', 'fn': 'max', 'expr': 'amount'},
        {'name': 'kinds', 'fn': 'count_distinct', 'expr': 'kind'},
        {'name': 'latest', 'fn': 'last', 'expr': 'amount'},
        {'name': 'score_sum', 'fn': 'sum', 'expr': 'score'},
        {'name': 'score_avg', 'fn': 'avg', 'expr': 'score'}],
    windows={'1h': '1h', '3h': '3h', '1d': '1d'},
    where="kind <> 'refund'",
    rendering=rendering) }}
{%- endmacro %}
