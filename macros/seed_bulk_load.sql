{#-
  spark__load_csv_rows(model, agate_table): dbt seed on Spark as one bulk load. dbt-spark's own
  seed sends the rows as INSERT ... VALUES statements of bound literals: minutes for the demo's
  50k rows, as Spark parses and plans every literal. This reads the seed's CSV file with Spark's
  CSV reader (header, RFC 4180 quotes, an empty field is NULL as dbt reads it) and inserts it in
  one statement, each column cast to its seed column type (`column_types`, else dbt's inferred
  type). A row that does not fit the file's header fails the seed (mode FAILFAST).
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
  {%- set path = model['root_path'] ~ '/' ~ model['original_file_path'] -%}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set view = '_sk_seed_' ~ model['name'] -%}
  {%- call statement('_sk_seed_csv') -%}
    create or replace temporary view {{ view }}
    using csv options (path '{{ path }}', header 'true', quote '"', escape '"',
                       multiLine 'true', mode 'FAILFAST')
  {%- endcall -%}
  {%- set sql -%}
    insert into {{ this.render() }}
    select {% for col_name in agate_table.column_names -%}
      {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
      cast({{ adapter.quote(col_name) }} as {{ type }}){{ ', ' if not loop.last }}
    {%- endfor %}
    from {{ view }}
  {%- endset -%}
  {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
  {{ return(sql) }}
{% endmacro %}
