select driver_id, event_timestamp, created from {{ ref('driver_stats') }}
