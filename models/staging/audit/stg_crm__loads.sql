-- One row per raw export per build: how many rows it held, how many staging rejected and kept,
-- and its newest event. Incremental: every build appends, so the load_is_complete test compares
-- this load with the previous one (a truncated export fails the build).
{{ config(materialized='incremental', on_schema_change='fail') }}
{%- set spec = skewless.crm_staging_spec() %}
{% for raw_name, table in spec.items() %}
{%- set newest = (table['columns'] | selectattr('event_time') | list)[-1]['name'] %}
select
    cast('{{ invocation_id }}' as {{ skewless.sql_type('text') }}) as load_id,
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp) as built_at,
    {{ skewless.load_time() }} as loaded_at,
    cast('{{ raw_name }}' as {{ skewless.sql_type('text') }}) as raw_table,
    cast((select count(*) from {{ ref(raw_name) }}) as bigint) as raw_rows,
    cast((select count(*) from {{ ref('stg_crm__rejected_rows') }}
          where raw_table = '{{ raw_name }}') as bigint) as rejected_rows,
    cast((select count(*) from {{ ref(table['model']) }}) as bigint) as staged_rows,
    (select max({{ newest }}) from {{ ref(table['model']) }}) as newest_event_at
{% if not loop.last %}union all{% endif %}
{% endfor %}
