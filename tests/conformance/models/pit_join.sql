{{ skewless.asof_join(spine=ref('spine'), spine_ts='event_timestamp',
                      feature_views=[ref('driver_stats'), ref('customer_profile'),
                                     ref('driver_customer'), ref('driver_fresh')],
                      timestamps=true) }}
