{{ skewless.asof_join(spine=ref('spine'), spine_ts='event_timestamp', feature_views=[ref('driver_stats_ns')], rendering='portable') }}
