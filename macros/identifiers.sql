{#-
  Identifiers the macros emit are always quoted with the adapter's quoting, so a column named
  like a reserved word (`group`, `order`) or in mixed case (`LeadId`) works on every engine.
  Names are quoted as resolved from the relation when it can be looked up (its real spelling),
  as written otherwise.
-#}

{#- quote(name): the identifier `name`, quoted for the adapter ("group" on DuckDB/PostgreSQL). -#}
{% macro quote(name) -%}
  {{ return(adapter.quote(name)) }}
{%- endmacro %}

{#- quote_all(names): each of `names` quoted, joined with ', '. -#}
{% macro quote_all(names, prefix='') -%}
  {%- set out = [] -%}
  {%- for name in names -%}{%- do out.append(prefix ~ adapter.quote(name)) -%}{%- endfor -%}
  {{ return(out | join(', ')) }}
{%- endmacro %}

{#- column(alias, name): `alias."name"`, a quoted column of a relation alias. -#}
{% macro column(alias, name) -%}
  {{ return(alias ~ '.' ~ adapter.quote(name)) }}
{%- endmacro %}

{#- row_id(): a number distinct for every row of a select (duplicates included), in no order:
    row_number() over () where the engine allows a window without ORDER BY; Spark does not, and
    numbers rows with monotonically_increasing_id() (unique, not consecutive). -#}
{% macro row_id() -%}
  {{ return(adapter.dispatch('row_id', 'skewless')()) }}
{%- endmacro %}

{% macro default__row_id() -%}
  row_number() over ()
{%- endmacro %}

{% macro spark__row_id() -%}
  monotonically_increasing_id()
{%- endmacro %}
