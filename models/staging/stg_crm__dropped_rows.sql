-- What staging dropped, and why: one row per raw table and reason. Nothing else is dropped:
-- a row that cannot be typed fails the build instead.
{%- set tables = [
    ('raw_leads', 'stg_crm__leads'),
    ('raw_emails', 'stg_crm__emails'),
    ('raw_web_visits', 'stg_crm__web_visits'),
    ('raw_conversions', 'stg_crm__conversions'),
] %}
{% for raw, staged in tables %}
select
    cast('{{ raw }}' as varchar) as raw_table,
    cast('exact duplicate export' as varchar) as reason,
    cast((select count(*) from {{ ref(raw) }}) - (select count(*) from {{ ref(staged) }}) as bigint) as rows_dropped
{% if not loop.last %}union all{% endif %}
{% endfor %}
