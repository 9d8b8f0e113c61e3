-- driver_stats with a millisecond event timestamp and a second-precision created column (the
-- test loads values already at those precisions): they must join exactly.
{#- Spark has one timestamp type (microseconds): the view is then driver_stats itself -#}
{%- set types = {'duckdb': ('timestamp_ms', 'timestamp_s'), 'spark': ('timestamp', 'timestamp')} %}
{%- set ms, s = types.get(target.type, ('timestamp(3)', 'timestamp(0)')) %}
select driver_id, cast(event_timestamp as {{ ms }}) as event_timestamp,
       cast(created as {{ s }}) as created, conv_rate, acc_rate, avg_daily_trips
from {{ ref('driver_stats') }}
