{{ skewless.asof_join(spine=ref('odd_spine'), spine_ts='Order', feature_views=[ref('odd_view')],
                      timestamps=true) }}
