{#-
  validate_training_set(): a post-hook on every model under models/training/ (dbt_project.yml).
  A training set declares no columns: an analyst adds `ref('<view>')` to its `asof_join` and
  nothing else. Its types are still enforced end to end: every column it built must have exactly
  the type of the same-named column of a model it selects from (the feature views, whose
  contracts are enforced, and the label spine). A column with no such source, or of another type,
  fails the build naming the training model, the column and both types.
  A training model whose yml enforces its own contract (`config: contract: {enforced: true}`, as
  the story's leaky model does) is checked by dbt's contract instead. Returns no SQL.
-#}
{% macro validate_training_set() -%}
  {%- if execute and model is defined and not model.config.contract.enforced -%}
    {%- set sources = {} -%}
    {%- for uid in model.depends_on.nodes if uid.startswith('model.') -%}
      {%- set node = graph.nodes[uid] -%}
      {%- set relation = adapter.get_relation(node.database, node.schema,
                                              node.alias or node.name) -%}
      {%- if relation is not none -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
          {%- do sources.setdefault(column.name | lower, []).append(
                   (node.name, column.dtype | upper)) -%}
        {%- endfor -%}
      {%- endif -%}
    {%- endfor -%}
    {%- for column in adapter.get_columns_in_relation(this) -%}
      {%- set name = column.name | lower -%}
      {%- set candidates = sources.get(name, []) -%}
      {%- if not candidates and '__' in name -%}
        {#- full_feature_names (<view>__<feature>) and timestamps=true (<view>__event_ts, ...) -#}
        {%- set view, feature = name.rsplit('__', 1) -%}
        {%- if feature in ['event_ts', 'created_ts', 'available_at'] -%}
          {%- set candidates = [(view, 'TIMESTAMP')] if (column.dtype | upper).startswith('TIMESTAMP')
                               else [(view, 'a timestamp')] -%}
        {%- else -%}
          {%- set candidates = sources.get(feature, []) | selectattr(0, 'equalto', view) | list -%}
        {%- endif -%}
        {%- set dtype = 'TIMESTAMP' if feature in ['event_ts', 'created_ts', 'available_at']
                        and (column.dtype | upper).startswith('TIMESTAMP') else column.dtype | upper -%}
        {%- do skewless._require_source_type(model.name, column.name, dtype, candidates) -%}
      {%- else -%}
        {%- do skewless._require_source_type(model.name, column.name, column.dtype | upper,
                                              candidates) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}

{% macro _require_source_type(model_name, column, dtype, candidates) -%}
  {%- set where = "skewless: training model '" ~ model_name ~ "', column '" ~ column ~ "'" -%}
  {%- if not candidates -%}
    {{ exceptions.raise_compiler_error(where ~ " comes from none of the models it selects from; "
         ~ "select it from a feature view or the spine, or declare the model's columns with "
         ~ "data_type and `contract: {enforced: true}` in its yml") }}
  {%- endif -%}
  {%- if dtype not in candidates | map(attribute=1) | list -%}
    {%- set found = [] -%}
    {%- for name, source_type in candidates -%}
      {%- do found.append(source_type ~ " in " ~ name) -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error(where ~ " is " ~ dtype ~ " but " ~ found | join(', ')
         ~ ": the training set must keep the types of its sources") }}
  {%- endif -%}
{%- endmacro %}
