-- The training set: every scoring event (the label spine) with the features that were available
-- at its scored_at, joined point-in-time. Feast's get_historical_features on the same spine and
-- the `lead_conversion` feature service returns exactly these rows (tests/test_training_parity.py).
{{ skewless.asof_join(
    spine=ref('stg_crm__scoring_events'),
    spine_ts='scored_at',
    feature_views=[ref('lead_profile'), ref('lead_activity'), ref('lead_recent_activity'),
                   ref('lead_engagement')]) }}
