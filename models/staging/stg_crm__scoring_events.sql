-- The label spine: each time an open lead was scored, and whether it converted within 14 days.
select
    cast(lead_id as bigint) as lead_id,
    {{ skewless.to_utc_timestamp('scored_at') }} as scored_at,
    cast(converted_within_14d as boolean) as converted_within_14d
from {{ ref('raw_scoring_events') }}
