select order_id, driver_id, customer_id, cast(event_timestamp as varchar(40)) as event_timestamp from {{ ref('spine') }}
