-- One row per converted lead: typed, UTC converted_at.
select distinct
    cast(lead_id as bigint) as lead_id,
    {{ skewless.to_utc_timestamp('converted_at') }} as converted_at
from {{ ref('raw_conversions') }}
