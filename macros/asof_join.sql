{#-
  asof_join(spine, spine_ts, feature_views, full_feature_names=false)

  The point-in-time join of DESIGN's contract: for every spine row (keys k, instant t) and
  every feature view (rows k, event e, created c), pick among rows with
    e <= t, c <= t (available at t: no backfill leakage), and e >= t - ttl when a ttl is set,
  the greatest e, ties broken by the greatest c. The spine is preserved exactly: every row,
  duplicates included, all its columns, in a LEFT join; no match gives NULL features.

  Arguments:
    spine        a relation (`ref('...')`) whose rows are the instants to join at; it must have
                 `spine_ts` and every join key of every view, named as in the views.
    spine_ts     the spine's instant column (UTC timestamp).
    feature_views  a list of `ref('<feature view model>')`; keys, timestamps, ttl and features
                 come from each model's `meta.feature_view` (see feature_view_spec).
    full_feature_names  name columns `<view>__<feature>`, as Feast does with the same flag.
    rendering    none: the adapter's own; 'portable': force the window-function rendering (used
                 by tests/sql/assert_asof_renderings_agree.sql to prove both agree).

  Renders a `select`. DuckDB uses native ASOF JOIN; other engines a portable window-function
  rendering with the same result.
-#}
{% macro asof_join(spine, spine_ts, feature_views, full_feature_names=false, rendering=none) -%}
  {%- if not execute -%}{{ return('select 1 as _skewless_parsing') }}{%- endif -%}
  {%- set spine_columns = skewless.relation_columns(spine) -%}
  {%- set views = [] -%}
  {%- for relation in feature_views -%}
    {%- set spec = skewless.feature_view_spec(relation) -%}
    {%- for column in spec['keys'] + [spine_ts] -%}
      {%- if column not in spine_columns -%}
        {{ exceptions.raise_compiler_error("skewless.asof_join: spine " ~ spine ~ " has no column '" ~ column ~ "' (needed to join feature view '" ~ spec['name'] ~ "'); it has: " ~ spine_columns | join(', ')) }}
      {%- endif -%}
    {%- endfor -%}
    {%- do spec.update({'relation': relation, 'alias': '_sk_fv' ~ loop.index}) -%}
    {%- do views.append(spec) -%}
  {%- endfor -%}
  {%- set render = skewless.default__asof_join if rendering == 'portable' else adapter.dispatch('asof_join', 'skewless') -%}
  {{ return(render(spine, spine_columns, spine_ts, views, full_feature_names)) }}
{%- endmacro %}

{% macro _asof_feature_columns(view, full_feature_names) -%}
  {%- for feature in view['features'] -%}
    {{ view['alias'] }}.{{ feature }} as {{ view['name'] ~ '__' ~ feature if full_feature_names else feature }}{{ ',' if not loop.last }}
  {%- endfor -%}
{%- endmacro %}

{#- DuckDB: per view, a running "best (e, c) available so far" indexed by available_at =
    greatest(e, c), one native ASOF JOIN from the spine, then an equi-join back to the row. -#}
{% macro duckdb__asof_join(spine, spine_columns, spine_ts, views, full_feature_names) -%}
with
{%- for v in views %}
{%- set created = v['created'] or v['timestamp'] %}
{{ v['alias'] }}_best as (
    select {{ v['keys'] | join(', ') }}, available_at,
        max(best) over (partition by {{ v['keys'] | join(', ') }} order by available_at
                        rows between unbounded preceding and current row) as best
    from (
        select {{ v['keys'] | join(', ') }}, greatest({{ v['timestamp'] }}, {{ created }}) as available_at,
            max({'e': {{ v['timestamp'] }}, 'c': {{ created }}}) as best
        from {{ v['relation'] }}
        where {{ v['timestamp'] }} is not null and {{ created }} is not null
        group by all
    )
){{ ',' if not loop.last }}
{%- endfor %}
select
    _sk_spine.*
{%- for v in views %},
    {{ skewless._asof_feature_columns(v, full_feature_names) }}
{%- endfor %}
from {{ spine }} as _sk_spine
{%- for v in views %}
{%- set created = v['created'] or v['timestamp'] %}
asof left join {{ v['alias'] }}_best as {{ v['alias'] }}_pick
    on {% for k in v['keys'] %}_sk_spine.{{ k }} = {{ v['alias'] }}_pick.{{ k }} and {% endfor -%}
       {{ v['alias'] }}_pick.available_at <= _sk_spine.{{ spine_ts }}
left join {{ v['relation'] }} as {{ v['alias'] }}
    on {% for k in v['keys'] %}{{ v['alias'] }}.{{ k }} = {{ v['alias'] }}_pick.{{ k }} and {% endfor -%}
       {{ v['alias'] }}.{{ v['timestamp'] }} = {{ v['alias'] }}_pick.best.e
   and {{ v['alias'] }}.{{ created }} = {{ v['alias'] }}_pick.best.c
   {%- if v['ttl'] %}
   and {{ v['alias'] }}_pick.best.e >= _sk_spine.{{ spine_ts }} - {{ skewless.interval_literal(v['ttl'], 'ttl of ' ~ v['name']) }}
   {%- endif %}
{%- endfor %}
{%- endmacro %}

{#- Portable: number the spine rows, LEFT JOIN candidates, keep row_number() = 1 per spine row
    ordered by (e desc, c desc). One nested step per view. -#}
{% macro default__asof_join(spine, spine_columns, spine_ts, views, full_feature_names) -%}
{%- set carried = [] -%}
{%- set ns = namespace(source='(select _sk_s.*, row_number() over () as _sk_row from ' ~ spine ~ ' as _sk_s)') -%}
{%- for v in views %}
{%- set created = v['created'] or v['timestamp'] %}
{%- set step -%}
(select * from (
    select _sk_prev.*,
        {{ skewless._asof_feature_columns(v, full_feature_names) }},
        row_number() over (partition by _sk_prev._sk_row
                           order by {{ v['alias'] }}.{{ v['timestamp'] }} desc, {{ v['alias'] }}.{{ created }} desc) as _sk_rank{{ loop.index }}
    from {{ ns.source }} as _sk_prev
    left join {{ v['relation'] }} as {{ v['alias'] }}
      on {% for k in v['keys'] %}{{ v['alias'] }}.{{ k }} = _sk_prev.{{ k }} and {% endfor -%}
         {{ v['alias'] }}.{{ v['timestamp'] }} <= _sk_prev.{{ spine_ts }}
     and {{ v['alias'] }}.{{ created }} <= _sk_prev.{{ spine_ts }}
     {%- if v['ttl'] %}
     and {{ v['alias'] }}.{{ v['timestamp'] }} >= _sk_prev.{{ spine_ts }} - {{ skewless.interval_literal(v['ttl'], 'ttl of ' ~ v['name']) }}
     {%- endif %}
) as _sk_ranked where _sk_rank{{ loop.index }} = 1)
{%- endset %}
{%- set ns.source = step -%}
{%- for feature in v['features'] -%}
  {%- do carried.append(v['name'] ~ '__' ~ feature if full_feature_names else feature) -%}
{%- endfor -%}
{%- endfor %}
select {{ (spine_columns + carried) | join(', ') }}
from {{ ns.source }} as _sk_final
{%- endmacro %}

{#- relation_columns(relation): column names of a relation, in order (lower-cased). -#}
{% macro relation_columns(relation) -%}
  {%- set columns = adapter.get_columns_in_relation(relation) -%}
  {%- if columns | length == 0 -%}
    {{ exceptions.raise_compiler_error("skewless: relation " ~ relation ~ " has no columns or does not exist (build it first)") }}
  {%- endif -%}
  {{ return(columns | map(attribute='name') | map('lower') | list) }}
{%- endmacro %}
