{#-
  external_empty(): post-hook of the external (parquet) feature views. dbt-duckdb writes an empty
  model as a parquet file with one all-NULL row (and hides it behind its view's filter), but
  Feast reads the file itself and would see a row with a NULL key and NULL timestamps. When the
  model is empty, this rewrites the file with the same columns and no rows. A feature view has
  non-NULL keys and timestamps, so one all-NULL row can only be that placeholder.
  Elsewhere (tables, other engines) it does nothing.
-#}
{% macro external_empty() -%}
  {%- if not execute or target.type != 'duckdb' or config.get('materialized') != 'external' -%}
    {{ return('select 1') }}
  {%- endif -%}
  {%- set location = render(config.get('location', default=external_location(this, config))) -%}
  {%- set temp = make_intermediate_relation(this.incorporate(type='table'), suffix='__dbt_tmp') -%}
  {%- set columns = adapter.get_columns_in_relation(temp) -%}
  {%- set check -%}
    select count(*) = 1
           and count(*) filter (where {% for col in columns -%}
             {{ adapter.quote(col.column) }} is null{% if not loop.last %} and {% endif %}
           {%- endfor %}) = 1
    from {{ temp }}
  {%- endset -%}
  {%- if columns and run_query(check)[0][0] -%}
    {{ return("copy (select * from " ~ temp ~ " where false) to '" ~ location
              ~ "' (format parquet)") }}
  {%- endif -%}
  {{ return('select 1') }}
{%- endmacro %}
