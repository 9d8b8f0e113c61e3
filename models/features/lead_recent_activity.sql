-- Lead recent activity: what the lead is doing right now. Too fresh to materialize on a cadence,
-- so it is served at request time by its rendered online SQL (serve: sql in the yml), from the
-- live event store. Offline it is the same windows evaluated at the exact instants a value
-- changes (window_ticks without a cadence): the as-of value at any t is exact, so training sees
-- what request-time serving computes.
{%- set emails_windows = {'1h': '1h'} %}
{%- set visits_windows = {'30m': '30m'} %}

with emails as (
    select lead_id, sent_at from {{ ref('stg_crm__emails') }}
),

visits as (
    select lead_id, visited_at, pages from {{ ref('stg_crm__web_visits') }}
),

changes as (
    {{ skewless.window_ticks(
        keys=['lead_id'],
        events=[{'relation': 'emails', 'ts': 'sent_at'}, {'relation': 'visits', 'ts': 'visited_at'}],
        windows=['1h', '30m'],
        cadence=none) }}
),

email_windows as (
    {{ skewless.window_aggregates(
        spine='changes', keys=['lead_id'], spine_ts='tick_ts',
        events='emails', event_ts='sent_at',
        aggregates=[{'name': 'emails', 'fn': 'count'}],
        windows=emails_windows) }}
),

visit_windows as (
    {{ skewless.window_aggregates(
        spine='changes', keys=['lead_id'], spine_ts='tick_ts',
        events='visits', event_ts='visited_at',
        aggregates=[{'name': 'visits', 'fn': 'count'},
                    {'name': 'pages', 'fn': 'sum', 'expr': 'pages', 'type': 'bigint'}],
        windows=visits_windows) }}
)

select
    email_windows.lead_id,
    email_windows.tick_ts as event_ts,
    email_windows.tick_ts as created_ts,
    email_windows.emails_1h,
    visit_windows.visits_30m,
    visit_windows.pages_30m
from email_windows
inner join visit_windows
    on email_windows.lead_id = visit_windows.lead_id
    and email_windows.tick_ts = visit_windows.tick_ts
