{#-
  parse_exact(column, type) and parse_problem(column, type): exact parsing of raw text, the same
  on every engine (DuckDB's cast accepts '1.4' as the bigint 1 and rounds '249.7' to 250;
  PostgreSQL rejects both: neither is what a text export means).

  type      accepted text (surrounding spaces ignored)             result
  bigint    [+-]?[0-9]+ within the 64-bit range                    bigint
  integer   [+-]?[0-9]+ within the 32-bit range                    integer
  boolean   true / false (any case)                                boolean
  text      anything                                               varchar (trimmed)

  parse_exact returns the typed value, or NULL when the text is NULL or not exactly of the type
  (never a rounded or truncated value); parse_problem returns NULL when the text is NULL or
  parses, else the reason '<column>: not an exact <type>'. Only ASCII digits are digits.
-#}
{% macro parse_exact(column, type) -%}
  {%- if type == 'text' -%}
    cast(trim({{ column }}) as {{ skewless.sql_type('text') }})
  {%- elif type == 'boolean' -%}
    (case lower(trim({{ column }})) when 'true' then true when 'false' then false end)
  {%- elif type in ('bigint', 'integer') -%}
    {{ return(adapter.dispatch('parse_exact_integer', 'skewless')(column, type)) }}
  {%- else -%}
    {{ exceptions.raise_compiler_error("skewless.parse_exact: unknown type '" ~ type ~ "' for "
                                       ~ column ~ " (bigint, integer, boolean or text)") }}
  {%- endif -%}
{%- endmacro %}

{% macro parse_problem(column, type) -%}
  (case when {{ column }} is not null and {{ skewless.parse_exact(column, type) }} is null
        then '{{ column }}: not an exact {{ type }}' end)
{%- endmacro %}

{% macro duckdb__parse_exact_integer(column, type) -%}
  (case when regexp_full_match(trim({{ column }}), '[+-]?[0-9]+')
        then try_cast(trim({{ column }}) as {{ type }}) end)
{%- endmacro %}

{#- portable: the regex first, then a range check on numeric (no overflow error), then the cast -#}
{% macro default__parse_exact_integer(column, type) -%}
  {%- set bound = '9223372036854775807' if type == 'bigint' else '2147483647' -%}
  (case when trim({{ column }}) ~ '^[+-]?[0-9]+$'
        then case when cast(trim({{ column }}) as numeric) between -{{ bound }} - 1 and {{ bound }}
                  then cast(trim({{ column }}) as {{ type }}) end end)
{%- endmacro %}

{#- Spark: rlike (no `~`); the cast after the range check (a cast that overflows gives NULL with
    dbt-spark's ANSI mode off and an error with it on: neither may decide) -#}
{% macro spark__parse_exact_integer(column, type) -%}
  {%- set bound = '9223372036854775807' if type == 'bigint' else '2147483647' -%}
  (case when trim({{ column }}) rlike '^[+-]?[0-9]{1,30}$'
        then case when cast(trim({{ column }}) as decimal(38, 0))
                       between -{{ bound }} - 1 and {{ bound }}
                  then cast(trim({{ column }}) as {{ type }}) end end)
{%- endmacro %}
