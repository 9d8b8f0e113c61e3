select driver_id, cast(event_timestamp as timestamp_ns) as event_timestamp, created, conv_rate
from {{ ref('driver_stats') }}
