{#- unique_rows(columns): no two rows share all of `columns`. Fails with the offending values. -#}
{% test unique_rows(model, columns) %}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- non_negative: the column is never below zero. -#}
{% test non_negative(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} < 0
{% endtest %}

{#-
  feature_view_rows_unique: a feature view has at most one row per (join keys, timestamp,
  created) and no NULL timestamp; two rows equal on those would make the as-of pick arbitrary
  (DESIGN section 3), so they are an error, never a silent random pick.
-#}
{% test feature_view_rows_unique(model) %}
{%- set spec = skewless.feature_view_spec(model) if execute else {'keys': [], 'timestamp': 'null', 'created': none} -%}
{%- set columns = spec['keys'] + [spec['timestamp']] + ([spec['created']] if spec['created'] else []) -%}
select {{ columns | join(', ') }}, count(*) as copies, 'duplicate (keys, timestamp, created)' as problem
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
union all
select {{ columns | join(', ') }}, 1, 'NULL timestamp or created'
from {{ model }}
where {{ spec['timestamp'] }} is null{% if spec['created'] %} or {{ spec['created'] }} is null{% endif %}
{% endtest %}
