-- window_aggregates evaluated at window_ticks without a cadence: the as-of value at any instant
-- (past the last event too) must be the windows at that instant (tests/test_pit_ticks.py).
with ticks as (
    {{ skewless.window_ticks(keys=['driver_id'],
                             events=[{'relation': source('conformance', 'src_events'),
                                      'ts': 'event_timestamp'}],
                             windows=['1h', '3h', '1d'], cadence=none) }}
)
, windows as (
    {{ conformance_windows(spine='ticks', spine_ts='tick_ts') }}
)
select * from windows
