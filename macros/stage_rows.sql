{#-
  Strict staging: one spec per raw export, rendered into the staged model, the rejected rows and
  the load record, so what is kept and what is dropped (and why) can never disagree.

  A spec is a list of columns, each a dict:
    name        the raw column (text) and the staged column
    type        bigint | integer | boolean | text (parse_exact) | timestamp (to_utc_timestamp)
    lower       text only: lower-cased
    min, max    the domain of the typed value (inclusive)
    event_time  timestamp only: rows after the load horizon are quarantined (see load_horizon)
    on_error    'drop' (default): a value that is not exactly of its type drops the row (recorded);
                'fail': it fails the build, the engine's cast error naming column and value

  checked_rows(raw, spec) selects every raw row with its typed columns, `_sk_reason` (NULL when
  the row is kept, else the first problem: a value that is not exactly of its type, outside its
  domain, or after the horizon) and `_sk_raw_row` (the raw values, comma-separated, for the
  record). A timestamp that is not a timestamp fails the build (the engine names the value).
-#}

{#- The instant this load is as of: var('skewless_load_time') (ISO text), else when dbt started. -#}
{% macro load_time() -%}
  {%- set given = var('skewless_load_time', none) -%}
  {%- set text = given if given else run_started_at.strftime('%Y-%m-%d %H:%M:%S') -%}
  {{ skewless.to_utc_timestamp("'" ~ text ~ "'") }}
{%- endmacro %}

{#- Events dated after this are implausible: load time + var('skewless_max_event_lead', '1d'). -#}
{% macro load_horizon() -%}
  ({{ skewless.load_time() }} + {{ skewless.interval_literal(var('skewless_max_event_lead', '1d'),
                                                          'skewless_max_event_lead') }})
{%- endmacro %}

{% macro _typed(col) -%}
  {%- if col.get('on_error', 'drop') == 'fail' and col['type'] not in ('timestamp', 'text') -%}
    {#- a cast of the message itself: an error on every engine, naming column and value -#}
    (case when {{ skewless.parse_problem(col['name'], col['type']) }} is not null
          then cast('{{ col['name'] }}: not an exact {{ col['type'] }}: ' || {{ col['name'] }}
                    as {{ col['type'] }})
          else {{ skewless.parse_exact(col['name'], col['type']) }} end)
  {%- elif col['type'] == 'timestamp' -%}
    {{ skewless.to_utc_timestamp(col['name']) }}
  {%- elif col.get('lower') -%}
    lower({{ skewless.parse_exact(col['name'], 'text') }})
  {%- else -%}
    {{ skewless.parse_exact(col['name'], col['type']) }}
  {%- endif -%}
{%- endmacro %}

{% macro checked_rows(raw, spec) -%}
  {%- set problems = [] -%}
  {%- for col in spec if col['type'] not in ('timestamp', 'text')
                         and col.get('on_error') != 'fail' -%}
    {%- do problems.append(skewless.parse_problem(col['name'], col['type'])) -%}
  {%- endfor -%}
  {%- for col in spec -%}
    {%- if col.get('min') is not none -%}
      {%- do problems.append("case when _sk_t_" ~ col['name'] ~ " < " ~ col['min'] ~ " then '"
                             ~ col['name'] ~ ": below " ~ col['min'] ~ "' end") -%}
    {%- endif -%}
    {%- if col.get('max') is not none -%}
      {%- do problems.append("case when _sk_t_" ~ col['name'] ~ " > " ~ col['max'] ~ " then '"
                             ~ col['name'] ~ ": above " ~ col['max'] ~ "' end") -%}
    {%- endif -%}
    {%- if col.get('event_time') -%}
      {%- do problems.append("case when _sk_t_" ~ col['name'] ~ " > " ~ skewless.load_horizon()
                             ~ " then '" ~ col['name'] ~ ": after the load horizon' end") -%}
    {%- endif -%}
  {%- endfor %}
select
  {%- for col in spec %}
    _sk_t_{{ col['name'] }} as {{ col['name'] }},
  {%- endfor %}
    {% if problems -%}
      coalesce({{ problems | join(',\n             ') }})
    {%- else %}cast(null as {{ skewless.sql_type('text') }}){% endif %} as _sk_reason,
    concat_ws(',', {% for col in spec -%}
      coalesce({{ col['name'] }}, ''){% if not loop.last %}, {% endif %}
    {%- endfor %}) as _sk_raw_row
from (
    select *,
      {%- for col in spec %}
        {{ skewless._typed(col) }} as _sk_t_{{ col['name'] }}{% if not loop.last %},{% endif %}
      {%- endfor %}
    from {{ raw }}
) as _sk_parsed
{%- endmacro %}

{#- The staged model: the kept rows, typed, exact duplicates removed (when `distinct`). -#}
{% macro staged_rows(raw, spec, distinct=true) -%}
select {% if distinct %}distinct {% endif %}{{ spec | map(attribute='name') | join(', ') }}
from ({{ skewless.checked_rows(raw, spec) }}) as _sk_checked
where _sk_reason is null
{%- endmacro %}

{#- The rejected rows of one raw export: raw_table, reason, raw_row. -#}
{% macro rejected_rows(raw_name, raw, spec) -%}
select cast('{{ raw_name }}' as {{ skewless.sql_type('text') }}) as raw_table, cast(_sk_reason as {{ skewless.sql_type('text') }}) as reason,
       cast(_sk_raw_row as {{ skewless.sql_type('text') }}) as raw_row
from ({{ skewless.checked_rows(raw, spec) }}) as _sk_checked
where _sk_reason is not null
{%- endmacro %}
