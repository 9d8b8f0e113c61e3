-- One row per web visit: typed, UTC visited_at; exact duplicate exports removed.
select distinct
    cast(visit_id as bigint) as visit_id,
    cast(lead_id as bigint) as lead_id,
    {{ skewless.to_utc_timestamp('visited_at') }} as visited_at,
    cast(pages as integer) as pages
from {{ ref('raw_web_visits') }}
