-- Lead engagement: how a lead engages with what it is sent and shown, over windows that end at
-- each hourly tick (the materialization cadence in lead_engagement.yml): visits landing on the
-- pricing page in the last 7 days, and emails opened, clicked and sent in the last 30 days.
-- Opens and clicks are counted when they happened (stg_crm__email_opens / _clicks, by opened_at
-- and clicked_at), never by when the email was sent: an email sent before the instant but
-- opened after it must not count.
{%- set windows = {'7d': '7d', '30d': '30d'} %}

with pricing_visits as (
    select lead_id, visited_at from {{ ref('stg_crm__web_visits') }}
    where page_path = '/pricing'
),

sends as (
    select lead_id, sent_at from {{ ref('stg_crm__emails') }}
),

opens as (
    select lead_id, opened_at from {{ ref('stg_crm__email_opens') }}
),

clicks as (
    select lead_id, clicked_at from {{ ref('stg_crm__email_clicks') }}
),

ticks as (
    {{ skewless.window_ticks(
        keys=['lead_id'],
        events=[{'relation': 'pricing_visits', 'ts': 'visited_at'},
                {'relation': 'sends', 'ts': 'sent_at'},
                {'relation': 'opens', 'ts': 'opened_at'},
                {'relation': 'clicks', 'ts': 'clicked_at'}],
        windows=windows.values(),
        cadence='1h') }}
),

pricing_windows as (
    {{ skewless.window_aggregates(
        spine='ticks', keys=['lead_id'], spine_ts='tick_ts',
        events='pricing_visits', event_ts='visited_at',
        aggregates=[{'name': 'pricing_visits', 'fn': 'count'}],
        windows={'7d': '7d'}) }}
),

send_windows as (
    {{ skewless.window_aggregates(
        spine='ticks', keys=['lead_id'], spine_ts='tick_ts',
        events='sends', event_ts='sent_at',
        aggregates=[{'name': 'emails_sent', 'fn': 'count'}],
        windows={'30d': '30d'}) }}
),

open_windows as (
    {{ skewless.window_aggregates(
        spine='ticks', keys=['lead_id'], spine_ts='tick_ts',
        events='opens', event_ts='opened_at',
        aggregates=[{'name': 'emails_opened', 'fn': 'count'}],
        windows={'30d': '30d'}) }}
),

click_windows as (
    {{ skewless.window_aggregates(
        spine='ticks', keys=['lead_id'], spine_ts='tick_ts',
        events='clicks', event_ts='clicked_at',
        aggregates=[{'name': 'emails_clicked', 'fn': 'count'}],
        windows={'30d': '30d'}) }}
)

select
    pricing_windows.lead_id,
    pricing_windows.tick_ts as event_ts,
    pricing_windows.tick_ts as created_ts,
    pricing_windows.pricing_visits_7d,
    open_windows.emails_opened_30d,
    click_windows.emails_clicked_30d,
    cast(open_windows.emails_opened_30d as {{ skewless.sql_type('double') }})
        / nullif(send_windows.emails_sent_30d, 0) as email_open_rate_30d
from pricing_windows
inner join send_windows
    on pricing_windows.lead_id = send_windows.lead_id
    and pricing_windows.tick_ts = send_windows.tick_ts
inner join open_windows
    on pricing_windows.lead_id = open_windows.lead_id
    and pricing_windows.tick_ts = open_windows.tick_ts
inner join click_windows
    on pricing_windows.lead_id = click_windows.lead_id
    and pricing_windows.tick_ts = click_windows.tick_ts
