{{ skewless.asof_join(spine=ref('spine_zoned'), spine_ts='event_timestamp', feature_views=[ref('driver_stats')]) }}
