{#-
  render_mode()

  How the skewless macros render, from `var('skewless_mode')`:
    offline   (default) the adapter's own, fastest rendering: what `dbt build` runs.
    portable  the portable (window-function) rendering on every adapter; `skewless check`
              reads feature signatures from this compile.
    online    the point query: each feature model evaluated for the requested keys at one
              instant, with bound parameters `$as_of` (timestamp) and `$<join key>` (a list of
              keys) instead of the tick spine. `skewless online-sql` compiles the project in this
              mode and writes target/online_sql/<dialect>/<view>.sql.
-#}
{% macro render_mode() -%}
  {%- set mode = var('skewless_mode', 'offline') -%}
  {%- if mode not in ['offline', 'portable', 'online'] -%}
    {{ exceptions.raise_compiler_error(
         "var skewless_mode is '" ~ mode ~ "'; expected offline, portable or online") }}
  {%- endif -%}
  {{ return(mode) }}
{%- endmacro %}
