{#- unique_rows(columns): no two rows share all of `columns`. Fails with the offending values. -#}
{% test unique_rows(model, columns) %}
select {{ skewless.quote_all(columns) }}, count(*) as copies
from {{ model }}
group by {{ skewless.quote_all(columns) }}
having count(*) > 1
{% endtest %}

{#- non_negative: the column is never below zero. -#}
{% test non_negative(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} < 0
{% endtest %}

{#-
  feature_view_rows_unique: a feature view has at most one row per (join keys, timestamp,
  created) and no NULL timestamp; two rows equal on those would make the as-of pick arbitrary
  (docs/design.md §3), so they are an error, never a silent random pick.
-#}
{% test feature_view_rows_unique(model) %}
{%- set spec = skewless.feature_view_spec(model) if execute
              else {'keys': [], 'timestamp': 'null', 'created': none} -%}
{%- set columns = spec['keys'] + [spec['timestamp']]
                  + ([spec['created']] if spec['created'] else []) -%}
{%- set listed = skewless.quote_all(columns) -%}
select {{ listed }}, count(*) as copies, 'duplicate (keys, timestamp, created)' as problem
from {{ model }}
group by {{ listed }}
having count(*) > 1
union all
select {{ listed }}, 1, 'NULL timestamp or created'
from {{ model }}
where {{ skewless.quote(spec['timestamp']) }} is null
{%- if spec['created'] %} or {{ skewless.quote(spec['created']) }} is null{% endif %}
{% endtest %}


{#-
  Point-in-time tests for a model built with `asof_join(..., timestamps=true)`. Each finds the
  joined views by their `<view>__event_ts` columns and returns one row per violation, naming
  the view and the offending timestamps:
    no_future_feature_rows(spine_ts):  a picked row's event timestamp is after the spine instant;
    feature_rows_available(spine_ts):  a picked row's `<view>__available_at` (created + lag,
                                       rounded up to the cadence) is after the spine instant;
    feature_rows_within_ttl(spine_ts): a picked row is older than its view's ttl.
  `spine_ts` is SQL (a column name; quote it, e.g. '"Order"', when it needs quoting).
-#}
{% macro _pit_views(model) -%}
  {%- set views = [] -%}
  {%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(model) -%}
      {%- set name = column.name | lower -%}
      {%- if name.endswith('__event_ts') -%}
        {%- do views.append(column.name[:-10]) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if views | length == 0 -%}
      {{ exceptions.raise_compiler_error(
           "skewless: " ~ model ~ " has no <view>__event_ts columns; build it with"
           ~ " asof_join(..., timestamps=true) to test it point-in-time") }}
    {%- endif -%}
  {%- endif -%}
  {{ return(views) }}
{%- endmacro %}

{% macro _pit_violations(model, spine_ts, problem, conditions) -%}
  {%- for view, condition in conditions %}
select cast('{{ view }}' as varchar(200)) as feature_view,
       cast('{{ problem }}' as varchar(200)) as problem, {{ spine_ts }} as spine_ts,
       {{ skewless.quote(view ~ '__event_ts') }} as event_ts,
       {{ skewless.quote(view ~ '__available_at') }} as available_at
from {{ model }}
where {{ condition }}
{% if not loop.last %}union all{% endif %}
  {%- endfor %}
  {%- if conditions | length == 0 %}select 1 as nothing where 1 = 0{% endif %}
{%- endmacro %}

{% test no_future_feature_rows(model, spine_ts) %}
  {%- set conditions = [] -%}
  {%- for view in skewless._pit_views(model) -%}
    {%- do conditions.append((view, skewless.quote(view ~ '__event_ts') ~ ' > ' ~ spine_ts)) -%}
  {%- endfor -%}
  {{ skewless._pit_violations(model, spine_ts, 'event timestamp after the spine instant',
                              conditions) }}
{% endtest %}

{% test feature_rows_available(model, spine_ts) %}
  {%- set conditions = [] -%}
  {%- for view in skewless._pit_views(model) -%}
    {%- do conditions.append((view, skewless.quote(view ~ '__available_at') ~ ' > ' ~ spine_ts)) -%}
  {%- endfor -%}
  {{ skewless._pit_violations(model, spine_ts, 'not yet available at the spine instant',
                              conditions) }}
{% endtest %}

{% test feature_rows_within_ttl(model, spine_ts) %}
  {%- set conditions = [] -%}
  {%- for view in skewless._pit_views(model) -%}
    {%- set ttl = skewless.feature_view_spec(view)['ttl'] if execute else none -%}
    {%- if ttl -%}
      {%- do conditions.append((view, skewless.quote(view ~ '__event_ts') ~ ' < ' ~ spine_ts
                                ~ ' - ' ~ skewless.interval_literal(ttl))) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ skewless._pit_violations(model, spine_ts, 'older than the ttl', conditions) }}
{% endtest %}
