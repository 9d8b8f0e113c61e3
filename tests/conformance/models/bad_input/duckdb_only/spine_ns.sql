select order_id, driver_id, cast(event_timestamp as timestamp_ns) as event_timestamp
from {{ ref('spine') }}
