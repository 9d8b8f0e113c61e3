-- What staging dropped, and why: one row per raw table and reason. Exact duplicate exports are
-- always listed (0 included); rows rejected for another reason (stg_crm__rejected_rows) are
-- listed per reason.
{%- set spec = skewless.crm_staging_spec() %}
{% for raw_name, table in spec.items() %}
select
    cast('{{ raw_name }}' as {{ skewless.sql_type('text') }}) as raw_table,
    cast('exact duplicate export' as {{ skewless.sql_type('text') }}) as reason,
    cast((select count(*) from {{ ref(raw_name) }})
         - (select count(*) from {{ ref('stg_crm__rejected_rows') }}
            where raw_table = '{{ raw_name }}')
         - (select count(*) from {{ ref(table['model']) }}) as bigint) as rows_dropped
union all
{% endfor %}
select raw_table, reason, cast(count(*) as bigint) as rows_dropped
from {{ ref('stg_crm__rejected_rows') }}
group by raw_table, reason
