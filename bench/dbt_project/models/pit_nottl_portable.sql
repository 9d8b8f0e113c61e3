{{ skewless.asof_join(spine=ref('spine'), spine_ts='t', feature_views=[ref('features_nottl')],
                      rendering='portable') }}
