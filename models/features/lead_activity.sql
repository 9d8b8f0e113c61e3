-- Lead activity: emails and web visits counted over windows that end at each hourly tick
-- (the materialization cadence in lead_activity.yml), anchored on the tick, not on events.
-- A row exists for every tick at which a value can change (an event enters or leaves a window),
-- so the as-of value at any instant t is the aggregate at the last tick <= t.
{%- set windows = {'7d': '7d', '30d': '30d'} %}

with emails as (
    select lead_id, sent_at from {{ ref('stg_crm__emails') }}
),

visits as (
    select lead_id, visited_at, pages from {{ ref('stg_crm__web_visits') }}
),

ticks as (
    {{ skewless.window_ticks(
        keys=['lead_id'],
        events=[{'relation': 'emails', 'ts': 'sent_at'}, {'relation': 'visits', 'ts': 'visited_at'}],
        windows=windows.values(),
        cadence='1h') }}
),

email_windows as (
    {{ skewless.window_aggregates(
        spine='ticks', keys=['lead_id'], spine_ts='tick_ts',
        events='emails', event_ts='sent_at',
        aggregates=[{'name': 'emails', 'fn': 'count'}],
        windows=windows) }}
),

visit_windows as (
    {{ skewless.window_aggregates(
        spine='ticks', keys=['lead_id'], spine_ts='tick_ts',
        events='visits', event_ts='visited_at',
        aggregates=[{'name': 'visits', 'fn': 'count'},
                    {'name': 'pages', 'fn': 'sum', 'expr': 'pages', 'type': 'bigint'}],
        windows=windows) }}
)

select
    email_windows.lead_id,
    email_windows.tick_ts as event_ts,
    email_windows.tick_ts as created_ts,
    email_windows.emails_7d,
    email_windows.emails_30d,
    visit_windows.visits_7d,
    visit_windows.visits_30d,
    visit_windows.pages_7d,
    visit_windows.pages_30d
from email_windows
inner join visit_windows
    on email_windows.lead_id = visit_windows.lead_id
    and email_windows.tick_ts = visit_windows.tick_ts
