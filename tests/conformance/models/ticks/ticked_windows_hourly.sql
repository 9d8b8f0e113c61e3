-- window_aggregates evaluated at hourly window_ticks: the as-of value at any instant t must be
-- the windows at the last hourly tick <= t (tests/test_pit_ticks.py).
with ticks as (
    {{ skewless.window_ticks(keys=['driver_id'],
                             events=[{'relation': source('conformance', 'src_events'),
                                      'ts': 'event_timestamp'}],
                             windows=['1h', '3h', '1d'], cadence='1h') }}
)
, windows as (
    {{ conformance_windows(spine='ticks', spine_ts='tick_ts') }}
)
select * from windows
