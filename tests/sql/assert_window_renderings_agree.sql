-- window_aggregates with a row filter, evaluated at the scoring instants and at instants exactly
-- on window boundaries (an event's own time, and that time + each window): the ASOF/running-total
-- rendering equals the portable correlated-subquery rendering, boundary inclusivity included.
{%- set windows = {'1h': '1h', '7d': '7d', '30d': '30d'} %}

with instants as (
    select lead_id, scored_at from {{ ref('stg_crm__scoring_events') }}
    union all
    select lead_id, sent_at from {{ ref('stg_crm__emails') }} where email_id % 7 = 0
    {%- for duration in windows.values() %}
    union all
    select lead_id, sent_at + {{ skewless.interval_literal(duration) }}
    from {{ ref('stg_crm__emails') }} where email_id % 7 = 0
    {%- endfor %}
),

{%- set args = dict(
    spine='instants', keys=['lead_id'], spine_ts='scored_at',
    events=ref('stg_crm__emails'), event_ts='sent_at',
    aggregates=[{'name': 'nurture_emails', 'fn': 'count'},
                {'name': 'email_id_total', 'fn': 'sum', 'expr': 'email_id', 'type': 'bigint'},
                {'name': 'email_id_avg', 'fn': 'avg', 'expr': 'email_id % 1000'},
                {'name': 'email_id_min', 'fn': 'min', 'expr': 'email_id'},
                {'name': 'email_id_max', 'fn': 'max', 'expr': 'email_id'},
                {'name': 'hours', 'fn': 'count_distinct', 'expr': 'extract(hour from sent_at)'},
                {'name': 'last_email', 'fn': 'last', 'expr': 'email_id'}],
    windows=windows,
    where="kind = 'nurture'") %}

native as (
    {{ skewless.window_aggregates(**args) }}
),

portable as (
    {{ skewless.window_aggregates(rendering='portable', **args) }}
)

(select 'only in native' as side, * from (select * from native except all select * from portable) as only_native)
union all
(select 'only in portable' as side, * from (select * from portable except all select * from native) as only_portable)
