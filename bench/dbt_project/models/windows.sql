{{ skewless.window_aggregates(
    spine=ref('spine'), keys=['k'], spine_ts='t', events=ref('events'), event_ts='ts',
    aggregates=[{'name': 'n', 'fn': 'count'},
                {'name': 'total', 'fn': 'sum', 'expr': 'amount', 'type': 'bigint'},
                {'name': 'mean', 'fn': 'avg', 'expr': 'amount'},
                {'name': 'hi', 'fn': 'max', 'expr': 'amount'}],
    windows={'1d': '1d', '7d': '7d', '30d': '30d'}) }}
