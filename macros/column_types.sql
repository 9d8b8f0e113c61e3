{#-
  Column types the point-in-time join can compare exactly (docs/design.md §5): join keys of one
  type family on both sides; instants that are plain UTC timestamps of at most microsecond
  precision (TIMESTAMP, TIMESTAMP_MS, TIMESTAMP_S), never text, zoned or nanosecond ones.
-#}

{#- relation_column_types(relation): {lower-cased column name: dbt Column}, in column order;
    a compile error when the relation has no columns (it does not exist yet). -#}
{% macro relation_column_types(relation) -%}
  {%- set columns = adapter.get_columns_in_relation(relation) -%}
  {%- if columns | length == 0 -%}
    {{ exceptions.raise_compiler_error(
         "skewless: relation " ~ relation ~ " has no columns or does not exist (build it first)") }}
  {%- endif -%}
  {%- set out = {} -%}
  {%- for column in columns %}{% do out.update({column.name | lower: column}) %}{% endfor -%}
  {{ return(out) }}
{%- endmacro %}

{#- type_family(column): what a dbt Column holds, in words two engines agree on: 'integer',
    'text', 'floating point', 'decimal', 'timestamp' (microseconds or coarser),
    'timestamp with nanoseconds', 'timestamp with time zone', else its lower-cased type. Values
    of one family compare exactly; across families through an implicit cast, or not at all. -#}
{% macro type_family(column) -%}
  {%- set t = column.dtype | lower -%}
  {%- set integers = ['int', 'int2', 'int4', 'int8', 'long', 'short'] -%}
  {%- if column.is_integer() or t in integers -%}{{ return('integer') }}
  {%- elif column.is_string() or t in ['string', 'text', 'bpchar'] -%}{{ return('text') }}
  {%- elif column.is_float() -%}{{ return('floating point') }}
  {%- elif t.startswith('decimal') or t.startswith('numeric') -%}{{ return('decimal') }}
  {%- elif t.startswith('timestamptz') or 'with time zone' in t -%}
    {{ return('timestamp with time zone') }}
  {%- elif t in ['timestamp_ns', 'timestamp(9)', 'datetime64[ns]'] -%}
    {{ return('timestamp with nanoseconds') }}
  {%- elif t.startswith('timestamp') or t == 'datetime' -%}{{ return('timestamp') }}
  {%- else -%}{{ return(t) }}
  {%- endif -%}
{%- endmacro %}

{#- check_instant_type(column, name, where): a compile error unless `column` (a dbt Column,
    called `name`, of `where`, e.g. "feature view 'x'") is a plain UTC timestamp of at most
    microsecond precision. -#}
{% macro check_instant_type(column, name, where) -%}
  {%- set family = skewless.type_family(column) -%}
  {%- if family == 'timestamp with nanoseconds' -%}
    {{ exceptions.raise_compiler_error(
         "skewless.asof_join: column '" ~ name ~ "' of " ~ where ~ " is " ~ column.dtype
         ~ ": nanosecond timestamps are not compared exactly (the join works in microseconds);"
         ~ " cast it to timestamp in the model, knowing it truncates") }}
  {%- elif family != 'timestamp' -%}
    {{ exceptions.raise_compiler_error(
         "skewless.asof_join: column '" ~ name ~ "' of " ~ where ~ " is " ~ column.dtype
         ~ ", not a timestamp without time zone: the point-in-time join compares UTC timestamps"
         ~ " only (normalize text and zoned instants in staging, with"
         ~ " skewless.to_utc_timestamp or a cast)") }}
  {%- endif -%}
{%- endmacro %}

{#- check_key_types(key, spine, spine_column, view_name, view_column): a compile error when a
    join key is of another type family in the spine than in the feature view. -#}
{% macro check_key_types(key, spine, spine_column, view_name, view_column) -%}
  {%- if skewless.type_family(spine_column) != skewless.type_family(view_column) -%}
    {{ exceptions.raise_compiler_error(
         "skewless.asof_join: join key '" ~ key ~ "' is " ~ spine_column.dtype ~ " in spine "
         ~ spine ~ " but " ~ view_column.dtype ~ " in feature view '" ~ view_name
         ~ "': keys of different types compare through an implicit cast or not at all;"
         ~ " cast one side in its model") }}
  {%- endif -%}
{%- endmacro %}

{#- sql_type(name): the engine's spelling of a portable type name, for casts and for the
    `data_type` of yml columns (`data_type: "{{ skewless.sql_type('text') }}"`): 'text' and
    'varchar' are varchar on DuckDB and PostgreSQL and string on Spark (no varchar without a
    length there); 'double' is double precision on DuckDB and PostgreSQL and double on Spark
    (whose `float` has 4 bytes). Any other name is returned as written. -#}
{% macro sql_type(name) -%}
  {{ return(adapter.dispatch('sql_type', 'skewless')(name | lower)) }}
{%- endmacro %}

{% macro default__sql_type(name) -%}
  {%- set spellings = {'text': 'varchar', 'string': 'varchar', 'double': 'double precision',
                       'float8': 'double precision'} -%}
  {{ return(spellings.get(name, name)) }}
{%- endmacro %}

{% macro spark__sql_type(name) -%}
  {%- set spellings = {'text': 'string', 'varchar': 'string', 'double precision': 'double',
                       'float8': 'double', 'integer': 'int'} -%}
  {{ return(spellings.get(name, name)) }}
{%- endmacro %}
