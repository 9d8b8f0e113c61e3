{{ skewless.asof_join(spine=ref('spine_ns'), spine_ts='event_timestamp', feature_views=[ref('driver_stats')]) }}
