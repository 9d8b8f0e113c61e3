{{ skewless.asof_join(spine=ref('spine'), spine_ts='ordered_at', feature_views=[ref('driver_stats')]) }}
