{#-
  event_store_index(): a post-hook on the staging models (dbt_project.yml) that the fresh
  (`serve: sql`) features read at request time. On PostgreSQL, a model whose
  `meta.skewless` declares `event_ts` and `event_keys` gets a B-tree index on
  (event_keys..., event_ts): the rendered online SQL filters every event read by the requested
  keys and the instant (`skewless online-sql`), and this index turns those reads into index
  range scans of the requested keys' events instead of whole-table scans. The index is created
  unnamed (PostgreSQL names it), so a rebuilt table gets its own. DuckDB: no SQL (a DuckDB ART
  index does not serve these joins; a fresh query there scans the few columns it reads).
-#}
{% macro event_store_index() -%}
  {%- if execute and model is defined and target.type == 'postgres' -%}
    {%- set meta = (model.config.meta or {}).get('skewless') or {} -%}
    {%- if meta.get('event_ts') and meta.get('event_keys') -%}
      create index on {{ this }} ({{ skewless.quote_all(meta['event_keys'] + [meta['event_ts']]) }})
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
