-- The adapter's asof_join rendering (native ASOF JOIN on DuckDB) and the portable
-- window-function rendering return the same multiset of rows for the training spine.
-- Returns the rows found in one and not the other; any row fails `dbt build`.
with native as (
    {{ skewless.asof_join(spine=ref('stg_crm__scoring_events'), spine_ts='scored_at',
                          feature_views=[ref('lead_profile'), ref('lead_activity'), ref('lead_recent_activity')],
                          full_feature_names=true) }}
),

portable as (
    {{ skewless.asof_join(spine=ref('stg_crm__scoring_events'), spine_ts='scored_at',
                          feature_views=[ref('lead_profile'), ref('lead_activity'), ref('lead_recent_activity')],
                          full_feature_names=true, rendering='portable') }}
)

(select 'only in native' as side, * from (select * from native except all select * from portable) as only_native)
union all
(select 'only in portable' as side, * from (select * from portable except all select * from native) as only_portable)
