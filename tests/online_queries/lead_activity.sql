-- the backend's re-implementation of lead_activity: windows ending at the last hourly tick
with req as (select unnest($lead_id) as lead_id),
emails as (
    select r.lead_id,
           count(*) filter (where e.sent_at > time_bucket(interval 1 hour, $as_of) - interval 7 day) as emails_7d,
           count(*) as emails_30d
    from req as r
    join stg_crm__emails as e
      on e.lead_id = r.lead_id
     and e.sent_at <= time_bucket(interval 1 hour, $as_of)
     and e.sent_at > time_bucket(interval 1 hour, $as_of) - interval 30 day
    group by r.lead_id
),
visits as (
    select r.lead_id,
           count(*) filter (where v.visited_at > time_bucket(interval 1 hour, $as_of) - interval 7 day) as visits_7d,
           count(*) as visits_30d,
           cast(coalesce(sum(v.pages) filter (where v.visited_at > time_bucket(interval 1 hour, $as_of) - interval 7 day), 0) as bigint) as pages_7d,
           cast(coalesce(sum(v.pages), 0) as bigint) as pages_30d
    from req as r
    join stg_crm__web_visits as v
      on v.lead_id = r.lead_id
     and v.visited_at <= time_bucket(interval 1 hour, $as_of)
     and v.visited_at > time_bucket(interval 1 hour, $as_of) - interval 30 day
    group by r.lead_id
)
select req.lead_id, emails.emails_7d, emails.emails_30d,
       visits.visits_7d, visits.visits_30d, visits.pages_7d, visits.pages_30d
from req
left join emails on emails.lead_id = req.lead_id
left join visits on visits.lead_id = req.lead_id
