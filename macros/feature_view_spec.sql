{#-
  feature_view_spec(relation): the `meta.feature_view` declaration of the model behind
  `relation` (a `ref(...)`, or the model's name as a string), normalized to a dict:
    {name, keys: [join key, ...], timestamp, created (or none), ttl (or none), features: [...],
     cadence (or none), lag (or none)}      -- cadence and lag from meta.feature_view.freshness
  Reads the same yml the Python manifest bridge reads (skewless/manifest.py), so the training
  set and the Feast registry can never disagree about keys, timestamps, ttl or features.
  Missing or inconsistent meta fails compilation with a message naming the model.
-#}
{% macro feature_view_spec(relation) -%}
  {%- set name = relation if relation is string else relation.identifier -%}
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
  {%- set freshness = fv.get('freshness') or {} -%}
  {{ return({'name': name, 'keys': keys, 'timestamp': fv['timestamp'], 'created': fv.get('created'),
             'ttl': fv.get('ttl'), 'features': features,
             'cadence': freshness.get('cadence'), 'lag': freshness.get('lag')}) }}
{%- endmacro %}

{#-
  interval_literal(duration): '90s' | '15m' | '12h' | '30d' | '2w' -> `interval '30 days'`.
  The same duration grammar as skewless/durations.py; anything else is a compile error.
-#}
{% macro interval_literal(duration, context='duration') -%}
  {%- do skewless.duration_seconds(duration, context) -%}
  {%- set match = modules.re.fullmatch('\s*(\d+)\s*([smhdw])\s*', duration | string) -%}
  {%- set unit = {'s': 'seconds', 'm': 'minutes', 'h': 'hours', 'd': 'days', 'w': 'weeks'}[match.group(2)] -%}
  interval '{{ match.group(1) }} {{ unit }}'
{%- endmacro %}

{#- duration_seconds(duration): '30d' -> 2592000 (a compile error for anything else). -#}
{% macro duration_seconds(duration, context='duration') -%}
  {%- set match = modules.re.fullmatch('\s*(\d+)\s*([smhdw])\s*', duration | string) -%}
  {%- if not match -%}
    {{ exceptions.raise_compiler_error("skewless: " ~ context ~ " '" ~ duration ~ "' is not a duration like 90s, 15m, 12h, 30d or 2w") }}
  {%- endif -%}
  {{ return(match.group(1) | int * {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}[match.group(2)]) }}
{%- endmacro %}

{#- widest_duration(durations): the longest of a list of durations, as written. -#}
{% macro widest_duration(durations) -%}
  {%- set ns = namespace(best=none, seconds=-1) -%}
  {%- for d in durations -%}
    {%- set s = skewless.duration_seconds(d) -%}
    {%- if s > ns.seconds -%}{%- set ns.best = d -%}{%- set ns.seconds = s -%}{%- endif -%}
  {%- endfor -%}
  {{ return(ns.best) }}
{%- endmacro %}
