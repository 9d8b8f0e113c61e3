{#-
  asof_join(spine, spine_ts, feature_views, full_feature_names=false, timestamps=false,
            rendering=none, spine_columns=none)

  The point-in-time join of DESIGN's contract: for every spine row (keys k, instant t) and
  every feature view (rows k, event e, created c), pick among the rows with
    e <= t,  available_at <= t,  and e >= t - ttl when the view has a ttl,
  the greatest e, ties broken by the greatest c. available_at is c (e when the view has no
  created column); with `freshness: {lag: L}` it is c + L, and with `freshness: {cadence: C}`
  the first materialization tick (multiple of C since the epoch) at or after that: training
  then sees exactly the staleness serving sees. The spine is preserved exactly: every row,
  duplicates included, all its columns, in a LEFT join; no match gives NULL features.

  Arguments:
    spine        a relation (`ref('...')`) whose rows are the instants to join at; it must have
                 `spine_ts` and every join key of every view, named as in the views.
    spine_ts     the spine's instant column (UTC timestamp).
    feature_views  a list of `ref('<feature view model>')`; keys, timestamps, ttl, freshness and
                 features come from each model's `meta.feature_view` (see feature_view_spec).
    full_feature_names  name columns `<view>__<feature>`, as Feast does with the same flag.
    timestamps   also return `<view>__event_ts`, `<view>__created_ts`, `<view>__available_at`
                 of the picked row (what the point-in-time generic tests check).
    rendering    none: the adapter's own; 'portable': force the window-function rendering (used
                 by tests/sql/assert_asof_renderings_agree.sql to prove both agree).
    spine_columns  the spine's column names, when `spine` is not a relation dbt can look up at
                 compile time (a table created at run time, e.g. by `skewless audit`).

  Renders a `select`. DuckDB uses native ASOF JOIN; other engines a portable window-function
  rendering with the same result. Bad input is a compile error naming the spine or view and the
  column: a spine without a join key or its instant, a join key of another type family on the two
  sides, a spine instant, view timestamp or created column that is text or zoned (DESIGN section
  5: UTC timestamps only, never naive against zoned).
-#}
{% macro asof_join(spine, spine_ts, feature_views, full_feature_names=false, timestamps=false, rendering=none, spine_columns=none) -%}
  {%- if not execute -%}{{ return('select 1 as _skewless_parsing') }}{%- endif -%}
  {#- the spine's columns by lower-cased name (none when given as names: a run-time table) -#}
  {%- set spine_types = none if spine_columns else skewless.relation_column_types(spine) -%}
  {%- set spine_columns = spine_columns or spine_types.keys() | list -%}
  {%- set views = [] -%}
  {%- for relation in feature_views -%}
    {%- set spec = skewless.feature_view_spec(relation) -%}
    {%- for column in spec['keys'] + [spine_ts] -%}
      {%- if column not in spine_columns -%}
        {{ exceptions.raise_compiler_error("skewless.asof_join: spine " ~ spine ~ " has no column '" ~ column ~ "' (needed to join feature view '" ~ spec['name'] ~ "'); it has: " ~ spine_columns | join(', ')) }}
      {%- endif -%}
    {%- endfor -%}
    {%- if spine_types is not none -%}{%- do skewless._asof_check_types(spine, spine_types, spine_ts, spec, relation) -%}{%- endif -%}
    {%- do spec.update({'relation': relation, 'alias': '_sk_fv' ~ loop.index}) -%}
    {%- do views.append(spec) -%}
  {%- endfor -%}
  {%- set portable = rendering == 'portable' or skewless.render_mode() != 'offline' -%}
  {%- set render = skewless.default__asof_join if portable else adapter.dispatch('asof_join', 'skewless') -%}
  {{ return(render(spine, spine_columns, spine_ts, views, full_feature_names, timestamps)) }}
{%- endmacro %}

{#- available_at of a feature row, from its created (or event) column, lag and cadence. -#}
{% macro _asof_available_at(view, alias=none) -%}
  {%- set prefix = alias ~ '.' if alias else '' -%}
  {%- set sql = prefix ~ (view['created'] or view['timestamp']) -%}
  {%- if view['lag'] -%}{%- set sql = '(' ~ sql ~ ' + ' ~ skewless.interval_literal(view['lag'], 'lag of ' ~ view['name']) ~ ')' -%}{%- endif -%}
  {%- if view['cadence'] -%}{%- set sql = skewless.ceil_to_cadence(sql, skewless.interval_literal(view['cadence'], 'cadence of ' ~ view['name'])) -%}{%- endif -%}
  {{ return(sql) }}
{%- endmacro %}

{% macro _asof_output_columns(view, full_feature_names, timestamps) -%}
  {%- set a = view['alias'] -%}
  {%- for feature in view['features'] -%}
    {{ a }}.{{ feature }} as {{ view['name'] ~ '__' ~ feature if full_feature_names else feature }}{{ ',' if not loop.last }}
  {%- endfor -%}
  {%- if timestamps -%},
    {{ a }}.{{ view['timestamp'] }} as {{ view['name'] }}__event_ts,
    {{ a }}.{{ view['created'] or view['timestamp'] }} as {{ view['name'] }}__created_ts,
    greatest({{ a }}.{{ view['timestamp'] }}, {{ skewless._asof_available_at(view, a) }}) as {{ view['name'] }}__available_at
  {%- endif -%}
{%- endmacro %}

{#- the output column names one view adds, in order -#}
{% macro _asof_output_names(view, full_feature_names, timestamps) -%}
  {%- set names = [] -%}
  {%- for feature in view['features'] -%}
    {%- do names.append(view['name'] ~ '__' ~ feature if full_feature_names else feature) -%}
  {%- endfor -%}
  {%- if timestamps -%}
    {%- for suffix in ['event_ts', 'created_ts', 'available_at'] -%}{%- do names.append(view['name'] ~ '__' ~ suffix) -%}{%- endfor -%}
  {%- endif -%}
  {{ return(names) }}
{%- endmacro %}

{#- DuckDB: per view, keep only the rows that can ever be picked, then one native ASOF JOIN on
    available_at per view: no join back, no range join. (event, created) is packed into one
    order-preserving HUGEINT; a row is kept when it is the greatest among the rows available
    by its own available_at (a RANGE frame: rows available at the same instant share it), so
    at most one row per instant is kept, and the kept row with the greatest available_at <= t
    is the greatest (event, created) available at t: the contract's pick. Sorting by
    available_at alone (not by available_at, event, created) is what makes this cheap. -#}
{% macro duckdb__asof_join(spine, spine_columns, spine_ts, views, full_feature_names, timestamps) -%}
with
{%- for v in views %}
{%- set created = v['created'] or v['timestamp'] %}
{%- set keys = v['keys'] | join(', ') %}
{{ v['alias'] }}_kept as (
    select {{ keys }}, _sk_at, {{ v['timestamp'] }}, {{ created }} as _sk_created, {{ v['features'] | join(', ') }}
    from (
        select *, max(_sk_order) over (partition by {{ keys }} order by _sk_at
                                       range between unbounded preceding and current row) as _sk_best
        from (
            select *, greatest({{ v['timestamp'] }}, {{ skewless._asof_available_at(v) }}) as _sk_at,
                   (epoch_us(cast({{ v['timestamp'] }} as timestamp))::hugeint << 64)
                   + (epoch_us(cast({{ created }} as timestamp))::hugeint + 9223372036854775808) as _sk_order
            from {{ v['relation'] }}
            where {{ v['timestamp'] }} is not null and {{ created }} is not null
        )
    )
    where _sk_order = _sk_best
){{ ',' if not loop.last }}
{%- endfor %}
select
    _sk_spine.*
{%- for v in views %}
{%- set a = v['alias'] %}
{%- set fresh = a ~ '.' ~ v['timestamp'] ~ ' >= _sk_spine.' ~ spine_ts ~ ' - ' ~ skewless.interval_literal(v['ttl'], 'ttl of ' ~ v['name']) if v['ttl'] else none %}
{%- for name, sql in skewless._asof_kept_outputs(v, full_feature_names, timestamps) %},
    {% if fresh %}case when {{ fresh }} then {{ sql }} end{% else %}{{ sql }}{% endif %} as {{ name }}
{%- endfor %}
{%- endfor %}
from {{ spine }} as _sk_spine
{%- for v in views %}
asof left join {{ v['alias'] }}_kept as {{ v['alias'] }}
    on {% for k in v['keys'] %}_sk_spine.{{ k }} = {{ v['alias'] }}.{{ k }} and {% endfor -%}
       {{ v['alias'] }}._sk_at <= _sk_spine.{{ spine_ts }}
{%- endfor %}
{%- endmacro %}

{#- (output name, SQL over the kept row) pairs of one view in the DuckDB rendering -#}
{% macro _asof_kept_outputs(view, full_feature_names, timestamps) -%}
  {%- set a = view['alias'] -%}
  {%- set out = [] -%}
  {%- for feature in view['features'] -%}
    {%- do out.append((view['name'] ~ '__' ~ feature if full_feature_names else feature, a ~ '.' ~ feature)) -%}
  {%- endfor -%}
  {%- if timestamps -%}
    {%- do out.append((view['name'] ~ '__event_ts', a ~ '.' ~ view['timestamp'])) -%}
    {%- do out.append((view['name'] ~ '__created_ts', a ~ '._sk_created')) -%}
    {%- do out.append((view['name'] ~ '__available_at', a ~ '._sk_at')) -%}
  {%- endif -%}
  {{ return(out) }}
{%- endmacro %}

{#- Portable: number the spine rows, LEFT JOIN the candidates, keep row_number() = 1 per spine
    row ordered by (e desc, c desc). One nested step per view. -#}
{% macro default__asof_join(spine, spine_columns, spine_ts, views, full_feature_names, timestamps) -%}
{%- set carried = [] -%}
{%- set ns = namespace(source='(select _sk_s.*, row_number() over () as _sk_row from ' ~ spine ~ ' as _sk_s)') -%}
{%- for v in views %}
{%- set created = v['created'] or v['timestamp'] %}
{%- set a = v['alias'] %}
{%- set step -%}
(select * from (
    select _sk_prev.*,
        {{ skewless._asof_output_columns(v, full_feature_names, timestamps) }},
        row_number() over (partition by _sk_prev._sk_row
                           order by {{ a }}.{{ v['timestamp'] }} desc, {{ a }}.{{ created }} desc) as _sk_rank{{ loop.index }}
    from {{ ns.source }} as _sk_prev
    left join {{ v['relation'] }} as {{ a }}
      on {% for k in v['keys'] %}{{ a }}.{{ k }} = _sk_prev.{{ k }} and {% endfor -%}
         {{ a }}.{{ v['timestamp'] }} <= _sk_prev.{{ spine_ts }}
     and {{ a }}.{{ created }} is not null
     and {{ skewless._asof_available_at(v, a) }} <= _sk_prev.{{ spine_ts }}
     {%- if v['ttl'] %}
     and {{ a }}.{{ v['timestamp'] }} >= _sk_prev.{{ spine_ts }} - {{ skewless.interval_literal(v['ttl'], 'ttl of ' ~ v['name']) }}
     {%- endif %}
) as _sk_ranked where _sk_rank{{ loop.index }} = 1)
{%- endset %}
{%- set ns.source = step -%}
{%- do carried.extend(skewless._asof_output_names(v, full_feature_names, timestamps)) -%}
{%- endfor %}
select {{ (spine_columns + carried) | join(', ') }}
from {{ ns.source }} as _sk_final
{%- endmacro %}

{#- relation_column_types(relation): {lower-cased column name: dbt Column}, in column order. -#}
{% macro relation_column_types(relation) -%}
  {%- set columns = adapter.get_columns_in_relation(relation) -%}
  {%- if columns | length == 0 -%}
    {{ exceptions.raise_compiler_error("skewless: relation " ~ relation ~ " has no columns or does not exist (build it first)") }}
  {%- endif -%}
  {%- set out = {} -%}
  {%- for column in columns %}{% do out.update({column.name | lower: column}) %}{% endfor -%}
  {{ return(out) }}
{%- endmacro %}

{#- type_family(column): what a dbt Column holds, in words two engines agree on: 'integer',
    'text', 'floating point', 'decimal', 'timestamp', 'timestamp with time zone', else its
    lower-cased type. Values of one family compare exactly; across families they would compare
    through an implicit cast, or not at all. -#}
{% macro type_family(column) -%}
  {%- set t = column.dtype | lower -%}
  {%- if column.is_integer() or t in ['int', 'int2', 'int4', 'int8', 'long', 'short'] -%}{{ return('integer') }}
  {%- elif column.is_string() or t in ['string', 'text', 'bpchar'] -%}{{ return('text') }}
  {%- elif column.is_float() -%}{{ return('floating point') }}
  {%- elif t.startswith('decimal') or t.startswith('numeric') -%}{{ return('decimal') }}
  {%- elif t == 'timestamptz' or (t.startswith('timestamp') and 'with time zone' in t) -%}{{ return('timestamp with time zone') }}
  {%- elif t.startswith('timestamp') or t == 'datetime' -%}{{ return('timestamp') }}
  {%- else -%}{{ return(t) }}
  {%- endif -%}
{%- endmacro %}

{#- The spine and a feature view must compare exactly (DESIGN section 5): each join key of one
    type family on both sides, and the spine instant, the view's timestamp and its created
    column all plain UTC timestamps, never naive against zoned and never text. A compile error
    names the spine or view, the column and both types. -#}
{% macro _asof_check_types(spine, spine_types, spine_ts, view, relation) -%}
  {%- set view_types = skewless.relation_column_types(relation) -%}
  {%- for key in view['keys'] -%}
    {%- set a, b = spine_types[key], view_types.get(key | lower) -%}
    {%- if b is not none and skewless.type_family(a) != skewless.type_family(b) -%}
      {{ exceptions.raise_compiler_error("skewless.asof_join: join key '" ~ key ~ "' is " ~ a.dtype ~ " in spine " ~ spine ~ " but " ~ b.dtype ~ " in feature view '" ~ view['name'] ~ "': keys of different types compare through an implicit cast or not at all; cast one side in its model") }}
    {%- endif -%}
  {%- endfor -%}
  {%- set instants = [('spine ' ~ spine, spine_ts, spine_types[spine_ts | lower])] -%}
  {%- for column in [view['timestamp'], view['created']] if column and view_types.get(column | lower) is not none -%}
    {%- do instants.append(("feature view '" ~ view['name'] ~ "'", column, view_types[column | lower])) -%}
  {%- endfor -%}
  {%- for where, column, type in instants -%}
    {%- if skewless.type_family(type) != 'timestamp' -%}
      {{ exceptions.raise_compiler_error("skewless.asof_join: column '" ~ column ~ "' of " ~ where ~ " is " ~ type.dtype ~ ", not a timestamp without time zone: the point-in-time join compares UTC timestamps only (normalize text and zoned instants in staging, with skewless.to_utc_timestamp or a cast)") }}
    {%- endif -%}
  {%- endfor -%}
{%- endmacro %}
