-- driver_stats with a millisecond event timestamp and a second-precision created column (the
-- test loads values already at those precisions): they must join exactly.
{%- set ms = 'timestamp_ms' if target.type == 'duckdb' else 'timestamp(3)' %}
{%- set s = 'timestamp_s' if target.type == 'duckdb' else 'timestamp(0)' %}
select driver_id, cast(event_timestamp as {{ ms }}) as event_timestamp,
       cast(created as {{ s }}) as created, conv_rate, acc_rate, avg_daily_trips
from {{ ref('driver_stats') }}
