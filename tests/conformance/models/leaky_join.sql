{{ config(tags=['must_fail']) }}
-- A deliberately wrong join (the latest row of each driver, whenever it was written), shaped
-- like asof_join(..., timestamps=true) output: the point-in-time tests must reject it.
select s.*, f.conv_rate,
       f.event_timestamp as driver_stats__event_ts,
       f.created as driver_stats__created_ts,
       f.created as driver_stats__available_at
from {{ ref('spine') }} as s
left join (
    select *, row_number() over (partition by driver_id order by event_timestamp desc, created desc) as rn
    from {{ ref('driver_stats') }}
) as f on f.driver_id = s.driver_id and f.rn = 1
