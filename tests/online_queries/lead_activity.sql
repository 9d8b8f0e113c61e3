-- the backend's re-implementation of lead_activity: windows ending at the last hourly tick.
-- A lead has values from the first tick at or after its first email or visit (counts of 0 once
-- its events have left the windows); before that it has none (NULL), as the materialized view.
with req as (
    select r.lead_id
    from (select unnest($lead_id) as lead_id) as r
    where exists (
        select 1
        from (select lead_id, sent_at as ts from stg_crm__emails
              union all
              select lead_id, visited_at from stg_crm__web_visits) as a
        where a.lead_id = r.lead_id and a.ts <= time_bucket(interval 1 hour, $as_of))
),
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
select req.lead_id, coalesce(emails.emails_7d, 0) as emails_7d,
       coalesce(emails.emails_30d, 0) as emails_30d,
       coalesce(visits.visits_7d, 0) as visits_7d, coalesce(visits.visits_30d, 0) as visits_30d,
       coalesce(visits.pages_7d, 0) as pages_7d, coalesce(visits.pages_30d, 0) as pages_30d
from req
left join emails on emails.lead_id = req.lead_id
left join visits on visits.lead_id = req.lead_id
