{#-
  asof_join(spine, spine_ts, feature_views, full_feature_names=false, timestamps=false,
            rendering=none, spine_columns=none)

  The point-in-time join of the contract (docs/design.md section 3): for every spine row
  (keys k, instant t) and every feature view (rows k, event e, created c), pick among the rows
  with
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
    timestamps   also return `<view>__event_ts`, `<view>__created_ts` and
                 `<view>__available_at` of the picked row (available_at as defined above:
                 created + lag rounded up to the cadence, never the event timestamp).
    rendering    none: the adapter's own; 'portable': force the window-function rendering (used
                 by tests/sql/assert_asof_renderings_agree.sql to prove both agree).
    spine_columns  the spine's column names, when `spine` is not a relation dbt can look up at
                 compile time (a table created at run time, e.g. by `skewless audit`).

  Renders a `select`; every identifier it emits is quoted. DuckDB uses native ASOF JOIN; other
  engines a portable window-function rendering with the same result. Bad input is a compile
  error naming the spine or view and the column: a spine without a join key or its instant, a
  join key of another type family on the two sides, a spine instant, view timestamp or created
  column that is text, zoned or in nanoseconds (section 5: UTC timestamps only).
-#}
{% macro asof_join(spine, spine_ts, feature_views, full_feature_names=false, timestamps=false,
                   rendering=none, spine_columns=none) -%}
  {%- if not execute -%}{{ return('select 1 as _skewless_parsing') }}{%- endif -%}
  {#- the spine's columns by lower-cased name (none when given as names: a run-time table) -#}
  {%- set spine_types = none if spine_columns else skewless.relation_column_types(spine) -%}
  {%- set spine_names = spine_columns or spine_types.values() | map(attribute='name') | list -%}
  {%- set views = [] -%}
  {%- set ns = namespace(spine_ts=spine_ts) -%}
  {%- for relation in feature_views -%}
    {%- set spec = skewless._asof_view(spine, spine_names, spine_types, spine_ts, relation) -%}
    {%- set ns.spine_ts = spec['spine_ts'] -%}
    {%- do spec.update({'relation': relation, 'alias': '_sk_fv' ~ loop.index,
                        'outputs': skewless._asof_output_names(spec, full_feature_names,
                                                              timestamps)}) -%}
    {%- do views.append(spec) -%}
  {%- endfor -%}
  {%- set portable = rendering == 'portable' or skewless.render_mode() != 'offline' -%}
  {%- set render = skewless.default__asof_join if portable
                   else adapter.dispatch('asof_join', 'skewless') -%}
  {{ return(render(spine, spine_names, ns.spine_ts, views, timestamps)) }}
{%- endmacro %}

{#- the spine's spelling of `column` (case-insensitive); a compile error naming the spine, the
    column and the view that needs it when the spine has no such column -#}
{% macro _asof_spine_column(spine, spine_names, column, view_name) -%}
  {%- for name in spine_names if name | lower == column | lower -%}
    {{ return(name) }}
  {%- endfor -%}
  {{ exceptions.raise_compiler_error(
       "skewless.asof_join: spine " ~ spine ~ " has no column '" ~ column ~ "'"
       ~ " (needed to join feature view '" ~ view_name ~ "'); it has: "
       ~ spine_names | join(', ')) }}
{%- endmacro %}

{#- one feature view's spec, checked against the spine (columns and types), with
    `spine_keys` and `spine_ts`: its join keys and the instant as the spine spells them -#}
{% macro _asof_view(spine, spine_names, spine_types, spine_ts, relation) -%}
  {%- set spec = skewless.feature_view_spec(relation) -%}
  {%- set view_types = spec['types'] or skewless.relation_column_types(relation) -%}
  {%- set where = "feature view '" ~ spec['name'] ~ "'" -%}
  {%- set spine_keys = [] -%}
  {%- for key in spec['keys'] + [spine_ts] -%}
    {%- set spine_key = skewless._asof_spine_column(spine, spine_names, key, spec['name']) -%}
    {%- do spine_keys.append(spine_key) -%}
    {%- if not loop.last and spine_types is not none and (key | lower) in view_types -%}
      {%- do skewless.check_key_types(key, spine, spine_types[spine_key | lower], spec['name'],
                                      view_types[key | lower]) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set spine_ts = spine_keys.pop() -%}
  {%- if spine_types is not none -%}
    {%- do skewless.check_instant_type(spine_types[spine_ts | lower], spine_ts,
                                       'spine ' ~ spine) -%}
  {%- endif -%}
  {%- for column in [spec['timestamp'], spec['created']]
        if column and (column | lower) in view_types -%}
    {%- do skewless.check_instant_type(view_types[column | lower], column, where) -%}
  {%- endfor -%}
  {%- do spec.update({'spine_keys': spine_keys, 'spine_ts': spine_ts}) -%}
  {{ return(spec) }}
{%- endmacro %}

{#- available_at of a feature row, from its created (or event) column, lag and cadence; the
    columns qualified by `alias` when given. -#}
{% macro _asof_available_at(view, alias=none) -%}
  {%- set column = skewless.quote(view['created'] or view['timestamp']) -%}
  {%- set sql = alias ~ '.' ~ column if alias else column -%}
  {%- if view['lag'] -%}
    {%- set lag = skewless.interval_literal(view['lag'], 'lag of ' ~ view['name']) -%}
    {%- set sql = '(' ~ sql ~ ' + ' ~ lag ~ ')' -%}
  {%- endif -%}
  {%- if view['cadence'] -%}
    {%- set step = skewless.interval_literal(view['cadence'], 'cadence of ' ~ view['name']) -%}
    {%- set sql = skewless.ceil_to_cadence(sql, step) -%}
  {%- endif -%}
  {{ return(sql) }}
{%- endmacro %}

{#- the ttl bound `<event> >= <instant> - ttl` of a view, or none when it has no ttl -#}
{% macro _asof_ttl_condition(view, event, instant) -%}
  {%- if not view['ttl'] -%}{{ return(none) }}{%- endif -%}
  {{ return(event ~ ' >= ' ~ instant ~ ' - '
            ~ skewless.interval_literal(view['ttl'], 'ttl of ' ~ view['name'])) }}
{%- endmacro %}

{#- the output column names one view adds, in order -#}
{% macro _asof_output_names(view, full_feature_names, timestamps) -%}
  {%- set names = [] -%}
  {%- for feature in view['features'] -%}
    {%- do names.append(view['name'] ~ '__' ~ feature if full_feature_names else feature) -%}
  {%- endfor -%}
  {%- if timestamps -%}
    {%- for suffix in ['event_ts', 'created_ts', 'available_at'] -%}
      {%- do names.append(view['name'] ~ '__' ~ suffix) -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(names) }}
{%- endmacro %}

{#- (output name, SQL) pairs of one view over its alias `a`: the features, and with
    `timestamps` the picked row's event, created and available_at, read from `stamps`
    ({'event_ts': sql, 'created_ts': sql, 'available_at': sql}) -#}
{% macro _asof_outputs(view, timestamps, stamps) -%}
  {%- set sqls = [] -%}
  {%- for feature in view['features'] -%}
    {%- do sqls.append(skewless.column(view['alias'], feature)) -%}
  {%- endfor -%}
  {%- if timestamps -%}
    {%- do sqls.extend([stamps['event_ts'], stamps['created_ts'], stamps['available_at']]) -%}
  {%- endif -%}
  {{ return(zip(view['outputs'], sqls) | list) }}
{%- endmacro %}

{#- DuckDB: per view, keep only the rows that can ever be picked, then one native ASOF JOIN on
    the instant each row becomes usable, greatest(event, available_at), per view: no join back,
    no range join. (event, created) is packed into one order-preserving UHUGEINT (each
    epoch_us offset by 2^63 so it is never negative, so every instant DuckDB holds packs); a row
    is kept when it is the greatest among the rows usable by its own instant (a RANGE frame:
    rows usable at the same instant share it), so at most one row per instant is kept, and the
    kept row with the greatest usable instant <= t is the greatest (event, created) usable at
    t: the contract's pick. Sorting by that instant alone is what makes this cheap. -#}
{% macro duckdb__asof_join(spine, spine_names, spine_ts, views, timestamps) -%}
with
{%- for v in views %}
{{ v['alias'] }}_kept as (
{{ skewless._asof_duckdb_kept(v, timestamps) }}
){{ ',' if not loop.last }}
{%- endfor %}
select
    _sk_spine.*
{%- for v in views %}
{%- set a = v['alias'] %}
{%- set fresh = skewless._asof_ttl_condition(v, a ~ '._sk_event',
                                             skewless.column('_sk_spine', spine_ts)) %}
{%- set stamps = {'event_ts': a ~ '._sk_event', 'created_ts': a ~ '._sk_created',
                  'available_at': a ~ '._sk_available'} %}
{%- for name, sql in skewless._asof_outputs(v, timestamps, stamps) %},
    {% if fresh %}case when {{ fresh }} then {{ sql }} end{% else %}{{ sql }}{% endif %}
    as {{ skewless.quote(name) }}
{%- endfor %}
{%- endfor %}
from {{ spine }} as _sk_spine
{%- for v in views %}
{%- set a = v['alias'] %}
asof left join {{ a }}_kept as {{ a }}
    on {% for key, spine_key in zip(v['keys'], v['spine_keys']) -%}
       {{ skewless.column('_sk_spine', spine_key) }} = {{ skewless.column(a, key) }} and
       {% endfor -%}
       {{ a }}._sk_usable <= {{ skewless.column('_sk_spine', spine_ts) }}
{%- endfor %}
{%- endmacro %}

{#- DuckDB: the rows of one view that are the greatest (event, created) usable at their own
    usable instant (_sk_usable), with _sk_event, _sk_created, _sk_available and the features -#}
{% macro _asof_duckdb_kept(v, timestamps) -%}
{%- set keys = skewless.quote_all(v['keys']) %}
{%- set event = skewless.quote(v['timestamp']) %}
{%- set created = skewless.quote(v['created'] or v['timestamp']) %}
{%- set offset = '9223372036854775808' %}
    select {{ keys }}, _sk_usable, _sk_event, _sk_created, _sk_available,
           {{ skewless.quote_all(v['features']) }}
    from (
        select *, max(_sk_order) over (
                      partition by {{ keys }} order by _sk_usable
                      range between unbounded preceding and current row) as _sk_best
        from (
            select *, {{ event }} as _sk_event, {{ created }} as _sk_created,
                   {{ skewless._asof_available_at(v) }} as _sk_available,
                   greatest({{ event }}, {{ skewless._asof_available_at(v) }}) as _sk_usable,
                   ((epoch_us(cast({{ event }} as timestamp))::hugeint + {{ offset }})::uhugeint
                    << 64)
                   + (epoch_us(cast({{ created }} as timestamp))::hugeint + {{ offset }})::uhugeint
                   as _sk_order
            from {{ v['relation'] }}
            where {{ event }} is not null and {{ created }} is not null
        )
    )
    where _sk_order = _sk_best
{%- endmacro %}

{#- Portable: number the spine rows, LEFT JOIN the candidates, keep row_number() = 1 per spine
    row ordered by (e desc, c desc). One nested step per view. -#}
{% macro default__asof_join(spine, spine_names, spine_ts, views, timestamps) -%}
{%- set carried = [] -%}
{%- set ns = namespace(source='(select _sk_s.*, ' ~ skewless.row_id() ~ ' as _sk_row from '
                               ~ spine ~ ' as _sk_s)') -%}
{%- for v in views %}
{%- set ns.source = skewless._asof_portable_step(ns.source, spine_ts, v, timestamps,
                                                  loop.index) -%}
{%- do carried.extend(v['outputs']) -%}
{%- endfor %}
select {{ skewless.quote_all(spine_names + carried) }}
from {{ ns.source }} as _sk_final
{%- endmacro %}

{#- Portable: one view's step over `source` (the spine so far, numbered by _sk_row) -#}
{% macro _asof_portable_step(source, spine_ts, v, timestamps, index) -%}
{%- set a = v['alias'] -%}
{%- set event = skewless.column(a, v['timestamp']) -%}
{%- set created = skewless.column(a, v['created'] or v['timestamp']) -%}
{%- set instant = skewless.column('_sk_prev', spine_ts) -%}
{%- set fresh = skewless._asof_ttl_condition(v, event, instant) -%}
{%- set stamps = {'event_ts': event, 'created_ts': created,
                  'available_at': skewless._asof_available_at(v, a)} -%}
(select * from (
    select _sk_prev.*
    {%- for name, sql in skewless._asof_outputs(v, timestamps, stamps) %},
        {{ sql }} as {{ skewless.quote(name) }}
    {%- endfor %},
        row_number() over (partition by _sk_prev._sk_row
                           order by {{ event }} desc, {{ created }} desc) as _sk_rank{{ index }}
    from {{ source }} as _sk_prev
    left join {{ v['relation'] }} as {{ a }}
      on {% for key, spine_key in zip(v['keys'], v['spine_keys']) -%}
         {{ skewless.column(a, key) }} = {{ skewless.column('_sk_prev', spine_key) }} and
         {% endfor -%}
         {{ event }} <= {{ instant }}
     and {{ created }} is not null
     and {{ skewless._asof_available_at(v, a) }} <= {{ instant }}
     {%- if fresh %}
     and {{ fresh }}
     {%- endif %}
) as _sk_ranked where _sk_rank{{ index }} = 1)
{%- endmacro %}

{#- Spark: a sort, never a join. Per view, the spine rows (their columns packed in one struct)
    and the view rows that can ever be picked are put in one stream per key, ordered by
    instant: a spine row's instant t, a view row's usable instant greatest(event, available_at)
    (usable at t exactly when e <= t and available_at <= t), view rows first on a tie. A running
    max of struct(event, created, ...) over that stream is, at each spine row, the greatest
    (event, created) usable at t: the contract's pick (section 3); a ttl then keeps it only when
    its event is >= t - ttl (the pick has the greatest event of all usable rows, so if it is
    outside the ttl every usable row is). A spine row with a NULL key or instant meets none.
    The cost is one sort of (spine + kept view rows) per view, whatever the rows per key.

    Before the sort, view rows that can never be picked are dropped (_asof_spark_candidates),
    with aggregates and equi-joins on the key only: per key of the spine, its first and last
    instant (t0, t1). A view row is kept only when its key is in the spine (a NULL key never is),
    its event and created are not NULL, its usable instant is <= t1 (usable at no spine instant
    otherwise), and with a ttl its event is >= t0 - ttl (outside the ttl at every spine instant,
    which are all >= t0: if such a row were the greatest usable one, the result is NULL, and the
    greatest kept usable row is older still, so NULL too). -#}
{% macro spark__asof_join(spine, spine_names, spine_ts, views, timestamps) -%}
{%- set ns = namespace(source=spine) -%}
{%- set carried = [] -%}
{%- for v in views -%}
{%- set ns.source = '(' ~ skewless._asof_spark_step(spine, ns.source, spine_ts, v,
                                                    timestamps) ~ ')' -%}
{%- do carried.extend(v['outputs']) -%}
{%- endfor %}
select {{ skewless.quote_all(spine_names + carried) }}
from {{ ns.source }} as _sk_final
{%- endmacro %}

{#- Spark: one view's step over `source` (the spine so far): its columns plus the view's -#}
{% macro _asof_spark_step(spine, source, spine_ts, v, timestamps) -%}
{%- set instant = skewless.column('_sk_row', spine_ts) -%}
{%- set fresh = skewless._asof_ttl_condition(v, '_sk_pick._sk_e', instant) -%}
{%- set stamps = {'event_ts': '_sk_pick._sk_e', 'created_ts': '_sk_pick._sk_c',
                  'available_at': '_sk_pick._sk_a'} -%}
select _sk_row.*
{%- for name, sql in skewless._asof_spark_outputs(v, timestamps, stamps) %},
    {% if fresh %}case when {{ fresh }} then {{ sql }} end{% else %}{{ sql }}{% endif %}
    as {{ skewless.quote(name) }}
{%- endfor %}
from (
    select _sk_side, _sk_row,
           max(_sk_candidate) over (
               partition by {{ skewless._asof_spark_keys(v) }}
               order by _sk_at, _sk_side
               rows between unbounded preceding and current row) as _sk_pick
    from (
        select {% for spine_key in v['spine_keys'] -%}
                 {{ skewless.column('_sk_s', spine_key) }} as _sk_k{{ loop.index }},
               {% endfor -%}
               {{ skewless.column('_sk_s', spine_ts) }} as _sk_at, 1 as _sk_side,
               struct(_sk_s.*) as _sk_row, null as _sk_candidate
        from {{ source }} as _sk_s
        union all
        select {{ skewless._asof_spark_keys(v) }}, _sk_at, 0 as _sk_side, null as _sk_row,
               _sk_candidate
        from ({{ skewless._asof_spark_candidates(spine, spine_ts, v) }}) as _sk_kept
    ) as _sk_stream
) as _sk_picked
where _sk_side = 1
{%- endmacro %}

{#- Spark: `_sk_k1, _sk_k2, ...`, a view's join keys as the stream names them -#}
{% macro _asof_spark_keys(v) -%}
  {%- for key in v['keys'] %}_sk_k{{ loop.index }}{{ ', ' if not loop.last }}{% endfor -%}
{%- endmacro %}

{#- Spark: the rows of view `v` that can ever be picked for a row of `spine` (see
    spark__asof_join for the rule and its proof), as (_sk_k1.., _sk_at, _sk_candidate): the
    key, the usable instant and the struct the running max compares. The spine's per-key
    bounds are an aggregate (one row per key) joined on the key. -#}
{% macro _asof_spark_candidates(spine, spine_ts, v) -%}
{%- set event = skewless.column('_sk_v', v['timestamp']) -%}
{%- set created = skewless.column('_sk_v', v['created'] or v['timestamp']) -%}
{%- set available = skewless._asof_available_at(v, '_sk_v') -%}
{%- set fresh = skewless._asof_ttl_condition(v, event, '_sk_b._sk_t0') %}
    with _sk_bounds as (
        select {% for spine_key in v['spine_keys'] -%}
                 {{ skewless.quote(spine_key) }} as _sk_k{{ loop.index }},
               {% endfor -%}
               min({{ skewless.quote(spine_ts) }}) as _sk_t0,
               max({{ skewless.quote(spine_ts) }}) as _sk_t1
        from {{ spine }}
        where {% for spine_key in v['spine_keys'] -%}
                {{ skewless.quote(spine_key) }} is not null and
              {% endfor -%}
              {{ skewless.quote(spine_ts) }} is not null
        group by {% for spine_key in v['spine_keys'] -%}
                   {{ skewless.quote(spine_key) }}{{ ', ' if not loop.last }}
                 {%- endfor %}
    )
    select {% for key in v['keys'] -%}
                 _sk_v.{{ skewless.quote(key) }} as _sk_k{{ loop.index }},
               {% endfor -%}
               greatest({{ event }}, {{ available }}) as _sk_at,
               named_struct('_sk_e', {{ event }}, '_sk_c', {{ created }},
                            '_sk_a', {{ available }}
                            {%- for feature in v['features'] -%}
                            , '_sk_f{{ loop.index }}', {{ skewless.column('_sk_v', feature) }}
                            {%- endfor %}) as _sk_candidate
        from {{ v['relation'] }} as _sk_v
        join _sk_bounds as _sk_b
          on {% for key in v['keys'] -%}
               _sk_v.{{ skewless.quote(key) }} = _sk_b._sk_k{{ loop.index }} and
             {% endfor -%}
             {{ event }} is not null and {{ created }} is not null
             and greatest({{ event }}, {{ available }}) <= _sk_b._sk_t1
             {%- if fresh %}
             and {{ fresh }}
             {%- endif %}
{%- endmacro %}

{#- Spark: (output name, SQL) pairs of one view, read from the picked struct _sk_pick -#}
{% macro _asof_spark_outputs(v, timestamps, stamps) -%}
  {%- set sqls = [] -%}
  {%- for feature in v['features'] -%}
    {%- do sqls.append('_sk_pick._sk_f' ~ loop.index) -%}
  {%- endfor -%}
  {%- if timestamps -%}
    {%- do sqls.extend([stamps['event_ts'], stamps['created_ts'], stamps['available_at']]) -%}
  {%- endif -%}
  {{ return(zip(v['outputs'], sqls) | list) }}
{%- endmacro %}
