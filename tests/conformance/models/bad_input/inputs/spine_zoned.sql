select order_id, driver_id, customer_id, cast(event_timestamp as timestamp with time zone) as event_timestamp
from {{ ref('spine') }}
