{#- within_domain(min, max): the column is never below `min` nor above `max` (either optional);
    returns the offending values. Staging drops such rows; the test guards what it keeps. -#}
{% test within_domain(model, column_name, min=none, max=none) %}
select {{ column_name }} from {{ model }}
where {% if min is not none %}{{ column_name }} < {{ min }}{% else %}1 = 0{% endif %}
   or {% if max is not none %}{{ column_name }} > {{ max }}{% else %}1 = 0{% endif %}
{% endtest %}

{#-
  load_is_complete: the latest load of each raw export (stg_crm__loads) is complete. One row per
  problem, naming the export:
    - it is empty (a header-only file);
    - it has fewer than (1 - var skewless_max_load_shrink) of the previous load's rows (default
      0.5: a truncated export);
    - staging rejected more than var skewless_max_rejected_fraction of its rows (default 0.01);
    - its newest event is older than var skewless_max_staleness before the load time (when set).
-#}
{% test load_is_complete(model) %}
{%- set shrink = var('skewless_max_load_shrink', 0.5) | float -%}
{%- set rejected = var('skewless_max_rejected_fraction', 0.01) | float -%}
{%- set staleness = var('skewless_max_staleness', none) -%}
with ranked as (
    select *, row_number() over (partition by raw_table order by built_at desc, load_id) as age
    from {{ model }}
),
latest as (select * from ranked where age = 1),
previous as (select * from ranked where age = 2)
select latest.raw_table, cast('empty export' as {{ skewless.sql_type('text') }}) as problem
from latest where latest.raw_rows = 0
union all
select latest.raw_table, cast('truncated export: ' || cast(latest.raw_rows as {{ skewless.sql_type('text') }})
       || ' rows, the previous load had ' || cast(previous.raw_rows as {{ skewless.sql_type('text') }}) as {{ skewless.sql_type('text') }})
from latest inner join previous on latest.raw_table = previous.raw_table
where latest.raw_rows < previous.raw_rows * {{ 1 - shrink }}
union all
select latest.raw_table, cast('rejected ' || cast(latest.rejected_rows as {{ skewless.sql_type('text') }}) || ' of '
       || cast(latest.raw_rows as {{ skewless.sql_type('text') }}) || ' rows (see stg_crm__rejected_rows)' as {{ skewless.sql_type('text') }})
from latest where latest.rejected_rows > latest.raw_rows * {{ rejected }}
{%- if staleness %}
union all
select latest.raw_table,
       cast('stale export: newest event ' || cast(latest.newest_event_at as {{ skewless.sql_type('text') }}) as {{ skewless.sql_type('text') }})
from latest
where latest.newest_event_at is null
   or latest.newest_event_at
      < latest.loaded_at - {{ skewless.interval_literal(staleness, 'skewless_max_staleness') }}
{%- endif %}
{% endtest %}
