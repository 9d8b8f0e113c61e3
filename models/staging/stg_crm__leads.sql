-- One row per lead version: typed, UTC timestamps, exact duplicate exports removed
-- (counted in stg_crm__dropped_rows). A late correction is a second version of the same
-- lead with a later updated_at; both versions are kept (feature views pick by availability).
select distinct
    cast(lead_id as bigint) as lead_id,
    {{ skewless.to_utc_timestamp('created_at') }} as created_at,
    {{ skewless.to_utc_timestamp('updated_at') }} as updated_at,
    cast(company_size as integer) as company_size,
    cast(lower(trim(industry)) as varchar) as industry,
    cast(contact_age as integer) as contact_age
from {{ ref('raw_leads') }}
