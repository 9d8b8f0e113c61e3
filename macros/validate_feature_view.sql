{#-
  validate_feature_view(): a post-hook on every model under models/features/ (dbt_project.yml).
  It fails the view's own `dbt build` when its `meta.feature_view` declaration does not fit the
  relation dbt just built, naming the model, the yml key and the fix, instead of letting a typo
  surface later as a Binder error in a training set or in `feast apply`:
    - an unknown key under meta.feature_view (e.g. `feature:` for `features:`);
    - an entity join key, `timestamp`, `created` or a listed feature that is not a column;
    - `ttl`, `freshness.cadence` or `freshness.lag` that is not a positive duration (90s, 15m,
      12h, 30d, 2w; a ttl of 0 is refused, Feast would read it as "no ttl");
    - `serve` other than store or sql.
  A model under models/features/ without meta.feature_view is left alone. Returns no SQL.
-#}
{% macro validate_feature_view() -%}
  {%- if execute and model is defined -%}
    {%- set fv = model.config.meta.get('feature_view') -%}
    {%- if fv -%}
      {%- do skewless._validate_feature_view(model.name, fv,
               adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{% macro _validate_feature_view(name, fv, columns) -%}
  {%- set where = "skewless: model '" ~ name ~ "', meta.feature_view" -%}
  {%- set known = ['entities', 'timestamp', 'created', 'ttl', 'freshness', 'features', 'serve'] -%}
  {%- for key in fv -%}
    {%- if key not in known -%}
      {{ exceptions.raise_compiler_error(where ~ "." ~ key ~ " is not a known key; use one of "
           ~ known | join(', ')) }}
    {%- endif -%}
  {%- endfor -%}
  {%- set lowered = columns | map('lower') | list -%}
  {%- for entity in fv.get('entities') or [] -%}
    {%- set key = entity['join_key'] if entity is mapping else entity -%}
    {%- do skewless._require_column(where ~ ".entities join_key", key, lowered, columns) -%}
  {%- endfor -%}
  {%- if not fv.get('timestamp') -%}
    {{ exceptions.raise_compiler_error(where ~ ".timestamp is required: name the event time column") }}
  {%- endif -%}
  {%- do skewless._require_column(where ~ ".timestamp", fv['timestamp'], lowered, columns) -%}
  {%- if fv.get('created') -%}
    {%- do skewless._require_column(where ~ ".created", fv['created'], lowered, columns) -%}
  {%- endif -%}
  {%- for feature in fv.get('features') or [] -%}
    {%- do skewless._require_column(where ~ ".features", feature, lowered, columns) -%}
  {%- endfor -%}
  {%- if fv.get('ttl') is not none -%}
    {%- do skewless._require_positive(where ~ ".ttl", fv['ttl']) -%}
  {%- endif -%}
  {%- set freshness = fv.get('freshness') or {} -%}
  {%- for key in ['cadence', 'lag'] -%}
    {%- if freshness.get(key) is not none and freshness.get(key) != 'none' -%}
      {%- do skewless._require_positive(where ~ ".freshness." ~ key, freshness[key]) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if fv.get('serve', 'store') not in ['store', 'sql'] -%}
    {{ exceptions.raise_compiler_error(where ~ ".serve is '" ~ fv['serve']
         ~ "'; use store (materialized) or sql (computed at request time)") }}
  {%- endif -%}
{%- endmacro %}

{% macro _require_column(what, column, lowered, columns) -%}
  {%- if (column | string | lower) not in lowered -%}
    {{ exceptions.raise_compiler_error(what ~ " '" ~ column ~ "' is not a column of the model; "
         ~ "its columns are " ~ columns | join(', ')) }}
  {%- endif -%}
{%- endmacro %}

{% macro _require_positive(what, duration) -%}
  {%- if skewless.duration_seconds(duration, what[10:]) == 0 -%}
    {{ exceptions.raise_compiler_error(what ~ " is '" ~ duration ~ "'; use a positive duration "
         ~ "(a ttl of 0 would mean no ttl to Feast)") }}
  {%- endif -%}
{%- endmacro %}
