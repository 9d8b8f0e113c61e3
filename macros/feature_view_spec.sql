{#-
  feature_view_spec(relation): the `meta.feature_view` declaration of the model behind
  `relation` (a `ref(...)`, or the model's name as a string), normalized to a dict:
    {name, keys: [join key, ...], timestamp, created (or none), ttl (or none), features: [...],
     cadence (or none), lag (or none), types: {lower-cased column: dbt Column} or none}
  cadence and lag come from meta.feature_view.freshness. Reads the same yml the Python manifest
  bridge reads (skewless/manifest.py), so the training set and the Feast registry agree on keys,
  timestamps, ttl and features.

  `features` omitted: the columns declared in the model's yml, else every column of the built
  relation, minus the join keys, timestamp and created. Column names are spelled as in the built
  relation when it can be looked up (so mixed case quotes right on every engine). Missing or
  inconsistent meta, a ttl or cadence of zero, or features that cannot be resolved (or resolve
  to none) fail compilation with a message naming the model.
-#}
{% macro feature_view_spec(relation) -%}
  {%- set name = relation if relation is string else relation.identifier -%}
  {%- set node = skewless._feature_view_node(name) -%}
  {%- set fv = node.config.meta.get('feature_view') -%}
  {%- if not fv -%}
    {{ exceptions.raise_compiler_error(
         "skewless: model '" ~ name ~ "' has no meta.feature_view in its yml;"
         ~ " only feature views can be as-of joined") }}
  {%- endif -%}
  {%- for required in ['entities', 'timestamp'] -%}
    {%- if not fv.get(required) -%}
      {{ exceptions.raise_compiler_error(
           "skewless: model '" ~ name ~ "': meta.feature_view." ~ required ~ " is required") }}
    {%- endif -%}
  {%- endfor -%}
  {%- set freshness = fv.get('freshness') or {} -%}
  {%- do skewless._positive_duration(name, 'ttl', fv.get('ttl'),
                                     '(Feast reads 0 as no ttl); omit it for no ttl') -%}
  {%- do skewless._positive_duration(name, 'freshness.cadence', freshness.get('cadence'), '') -%}
  {%- set types = skewless._feature_view_types(relation, node) -%}
  {%- set keys = [] -%}
  {%- for entity in fv['entities'] -%}
    {%- do keys.append(entity['join_key'] if entity is mapping else entity) -%}
  {%- endfor -%}
  {%- set reserved = keys + [fv['timestamp'], fv.get('created')] -%}
  {%- set features = fv.get('features')
        or skewless._undeclared_features(name, node, types, reserved) -%}
  {{ return({'name': name,
             'keys': skewless._spelled(keys, types),
             'timestamp': skewless._spelled([fv['timestamp']], types)[0],
             'created': skewless._spelled([fv['created']], types)[0] if fv.get('created') else none,
             'ttl': fv.get('ttl'), 'features': skewless._spelled(features, types),
             'cadence': freshness.get('cadence'), 'lag': freshness.get('lag'),
             'types': types}) }}
{%- endmacro %}

{#- the one model named `name` (its alias) in the graph; a compile error otherwise -#}
{% macro _feature_view_node(name) -%}
  {%- set nodes = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                    | selectattr('alias', 'equalto', name) | list -%}
  {%- if nodes | length != 1 -%}
    {{ exceptions.raise_compiler_error(
         "skewless: no single dbt model named '" ~ name ~ "' to read meta.feature_view from") }}
  {%- endif -%}
  {{ return(nodes[0]) }}
{%- endmacro %}

{#- a compile error when meta.feature_view.<key> is a duration of zero -#}
{% macro _positive_duration(name, key, duration, why) -%}
  {%- if duration is not none and skewless.duration_seconds(
        duration, key ~ ' of ' ~ name) == 0 -%}
    {{ exceptions.raise_compiler_error(
         "skewless: model '" ~ name ~ "': meta.feature_view." ~ key ~ " is " ~ duration
         ~ "; " ~ key.split('.')[-1] ~ " must be positive" ~ (" " ~ why if why else "")) }}
  {%- endif -%}
{%- endmacro %}

{#- the built relation's columns {lower-cased name: Column}, or none when it is not built -#}
{% macro _feature_view_types(relation, node) -%}
  {%- set built = relation if relation is not string else adapter.get_relation(
        database=node.database, schema=node.schema, identifier=node.alias) -%}
  {%- set columns = adapter.get_columns_in_relation(built) if built is not none else [] -%}
  {%- set out = {} -%}
  {%- for column in columns %}{% do out.update({column.name | lower: column}) %}{% endfor -%}
  {{ return(out if out else none) }}
{%- endmacro %}

{#- `names` spelled as the built relation spells them (case-insensitive), else as written -#}
{% macro _spelled(names, types) -%}
  {%- set out = [] -%}
  {%- for n in names -%}
    {%- do out.append(types[n | lower].name if types and (n | lower) in types else n) -%}
  {%- endfor -%}
  {{ return(out) }}
{%- endmacro %}

{#- "every other column": the yml's declared columns, else the built relation's, minus the
    keys and timestamps; a compile error naming the model when neither resolves to any -#}
{% macro _undeclared_features(name, node, types, reserved) -%}
  {%- set taken = [] -%}
  {%- for r in reserved if r %}{% do taken.append(r | lower) %}{% endfor -%}
  {%- set candidates = node.columns.keys() | list or (types.values() | map(attribute='name')
                                                     | list if types else []) -%}
  {%- set features = [] -%}
  {%- for c in candidates if c | lower not in taken %}{% do features.append(c) %}{% endfor -%}
  {%- if not features -%}
    {{ exceptions.raise_compiler_error(
         "skewless: model '" ~ name ~ "': meta.feature_view.features is not declared and "
         ~ ("the model has no columns besides its keys and timestamps" if types else
            "its columns are not in the yml and the model is not built yet")
         ~ "; declare meta.feature_view.features (or its columns in the yml)") }}
  {%- endif -%}
  {{ return(features) }}
{%- endmacro %}
