select driver_id, event_timestamp, conv_rate from {{ ref('driver_stats') }}
