{#-
  feature_view_spec(relation): the `meta.feature_view` declaration of the model behind
  `relation` (a `ref(...)`), normalized to a dict:
    {name, keys: [join key, ...], timestamp, created (or none), ttl (or none), features: [...]}
  Reads the same yml the Python manifest bridge reads (skewless/manifest.py), so the training
  set and the Feast registry can never disagree about keys, timestamps, ttl or features.
  Missing or inconsistent meta fails compilation with a message naming the model.
-#}
{% macro feature_view_spec(relation) -%}
  {%- set name = relation.identifier -%}
  {%- set nodes = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                    | selectattr('alias', 'equalto', name) | list -%}
  {%- if nodes | length != 1 -%}
    {{ exceptions.raise_compiler_error("skewless: no single dbt model named '" ~ name ~ "' to read meta.feature_view from") }}
  {%- endif -%}
  {%- set node = nodes[0] -%}
  {%- set fv = node.config.meta.get('feature_view') -%}
  {%- if not fv -%}
    {{ exceptions.raise_compiler_error("skewless: model '" ~ name ~ "' has no meta.feature_view in its yml; only feature views can be as-of joined") }}
  {%- endif -%}
  {%- for required in ['entities', 'timestamp'] -%}
    {%- if not fv.get(required) -%}
      {{ exceptions.raise_compiler_error("skewless: model '" ~ name ~ "': meta.feature_view." ~ required ~ " is required") }}
    {%- endif -%}
  {%- endfor -%}
  {%- set keys = [] -%}
  {%- for entity in fv['entities'] -%}
    {%- do keys.append(entity['join_key'] if entity is mapping else entity) -%}
  {%- endfor -%}
  {%- set reserved = keys + [fv['timestamp'], fv.get('created')] -%}
  {%- set features = fv.get('features') or (node.columns.keys() | reject('in', reserved) | list) -%}
  {{ return({'name': name, 'keys': keys, 'timestamp': fv['timestamp'], 'created': fv.get('created'),
             'ttl': fv.get('ttl'), 'features': features}) }}
{%- endmacro %}

{#-
  interval_literal(duration): '90s' | '15m' | '12h' | '30d' | '2w' -> `interval '30 days'`.
  The same duration grammar as skewless/durations.py; anything else is a compile error.
-#}
{% macro interval_literal(duration, context='duration') -%}
  {%- set match = modules.re.fullmatch('\s*(\d+)\s*([smhdw])\s*', duration | string) -%}
  {%- if not match -%}
    {{ exceptions.raise_compiler_error("skewless: " ~ context ~ " '" ~ duration ~ "' is not a duration like 90s, 15m, 12h, 30d or 2w") }}
  {%- endif -%}
  {%- set unit = {'s': 'seconds', 'm': 'minutes', 'h': 'hours', 'd': 'days', 'w': 'weeks'}[match.group(2)] -%}
  interval '{{ match.group(1) }} {{ unit }}'
{%- endmacro %}
