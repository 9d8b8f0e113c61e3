-- One row per email: typed, UTC sent_at; exact duplicate exports removed.
select distinct
    cast(email_id as bigint) as email_id,
    cast(lead_id as bigint) as lead_id,
    {{ skewless.to_utc_timestamp('sent_at') }} as sent_at,
    cast(lower(trim(kind)) as varchar) as kind
from {{ ref('raw_emails') }}
