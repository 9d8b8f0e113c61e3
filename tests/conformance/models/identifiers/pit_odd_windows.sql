{{ skewless.window_aggregates(
    spine=ref('odd_spine'), keys=['group'], spine_ts='Order',
    events=source('conformance', 'src_odd_events'), event_ts='order',
    aggregates=[{'name': 'Total', 'fn': 'sum', 'expr': adapter.quote('Amount'), 'type': 'bigint'},
                {'name': 'n', 'fn': 'count'},
                {'name': 'Top', 'fn': 'max', 'expr': adapter.quote('Amount')},
                {'name': 'Last', 'fn': 'last', 'expr': adapter.quote('Amount')}],
    windows={'1h': '1h'}) }}
