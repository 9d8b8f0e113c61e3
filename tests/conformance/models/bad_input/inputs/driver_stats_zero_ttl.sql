select * from {{ ref('driver_stats') }}
