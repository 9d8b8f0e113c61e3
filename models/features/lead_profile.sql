-- Lead profile: one row per lead version. A late correction has the same event_ts (the lead's
-- creation) and a later created_ts, so training before the correction sees what serving saw.
select
    lead_id,
    created_at as event_ts,
    updated_at as created_ts,
    cast(contact_age as {{ skewless.sql_type('double') }}) / 100 as contact_age_scaled,
    company_size,
    cast(ln(company_size) as {{ skewless.sql_type('double') }}) as log_company_size,
    company_size >= 1000 as is_enterprise,
    industry
from {{ ref('stg_crm__leads') }}
