{{ config(enabled=var('skewless_story', false)) }}
-- The story's training set, built the way its team built it: outside the skewless macros, with
-- "number of emails sent to this lead" counted over every email the lead ever got, including
-- the onboarding emails sent after it converted, i.e. after the label. It is here so that
-- `make demo` can train on it and show what it does in production, and so that `skewless check`
-- shows it flags this (enabled only with --vars '{skewless_story: true}').
with email_counts as (
    select lead_id, count(*) as emails_all_time
    from {{ ref('stg_crm__emails') }}
    group by lead_id
)

select
    spine.lead_id,
    spine.scored_at,
    spine.converted_within_14d,
    cast(coalesce(email_counts.emails_all_time, 0) as bigint) as emails_all_time
from {{ ref('stg_crm__scoring_events') }} as spine
left join email_counts on email_counts.lead_id = spine.lead_id
