{#-
  to_utc_timestamp(column): a raw timestamp string -> UTC `timestamp` (docs/design.md §5).

  Contract: a string with an offset (`+02:00`, `-0500`, `Z`) is converted to the same instant
  in UTC; a naive string (or a bare date) is taken to be UTC already. The result never depends
  on the session time zone. A string that is not a timestamp fails the model (the engine's
  error names the value; dbt names the model), it is never silently NULLed. NULL stays NULL.
-#}
{% macro to_utc_timestamp(column) -%}
  {{ return(adapter.dispatch('to_utc_timestamp', 'skewless')(column)) }}
{%- endmacro %}

{% macro duckdb__to_utc_timestamp(column) -%}
  case
    when regexp_matches(trim({{ column }}), ':[0-9]{2}(\.[0-9]+)? ?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$')
      then timezone('UTC', cast(trim({{ column }}) as timestamptz))
    else cast(trim({{ column }}) as timestamp)
  end
{%- endmacro %}

{% macro default__to_utc_timestamp(column) -%}
  case
    when trim({{ column }}) ~ ':[0-9]{2}(\.[0-9]+)? ?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$'
      then cast(trim({{ column }}) as timestamp with time zone) at time zone 'UTC'
    else cast(trim({{ column }}) as timestamp)
  end
{%- endmacro %}

{#- Spark: a cast reads the offset when there is one; a naive string is read as a wall clock
    (timestamp_ntz, never the session time zone) and taken as UTC through its microseconds since
    the epoch. Spark's cast gives NULL rather than an error on a bad value (dbt-spark turns ANSI
    mode off), so a value that does not parse raises an error naming it. -#}
{% macro spark__to_utc_timestamp(column) -%}
  {%- set text = 'trim(' ~ column ~ ')' -%}
  {%- set parsed -%}
    case
      when {{ text }} rlike ':[0-9]{2}(\\.[0-9]+)? ?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$'
        then cast({{ text }} as timestamp)
      else timestamp_micros(timestampdiff(MICROSECOND, timestamp_ntz '1970-01-01 00:00:00',
                                          cast({{ text }} as timestamp_ntz)))
    end
  {%- endset -%}
  case
    when {{ column }} is not null and ({{ parsed }}) is null
      then cast(raise_error(concat('skewless.to_utc_timestamp: not a timestamp: ', {{ column }}))
                as timestamp)
    else {{ parsed }}
  end
{%- endmacro %}
