select order_id, cast(driver_id as varchar(20)) as driver_id, customer_id, event_timestamp from {{ ref('spine') }}
