-- the backend's re-implementation of lead_profile (what the Java service would run); a version
-- is usable from the first hourly materialization tick after it was written (freshness: 1h)
select r.lead_id,
       cast(v.contact_age as double) / 100 as contact_age_scaled,
       v.company_size,
       cast(ln(v.company_size) as double) as log_company_size,
       v.company_size >= 1000 as is_enterprise,
       v.industry
from (select unnest($lead_id) as lead_id) as r
left join (
    select * from stg_crm__leads as l
    where l.created_at <= $as_of
      and l.updated_at <= time_bucket(interval 1 hour, $as_of)
      and l.created_at >= $as_of - interval 365 day
    qualify row_number() over (partition by l.lead_id order by l.created_at desc, l.updated_at desc) = 1
) as v on v.lead_id = r.lead_id
