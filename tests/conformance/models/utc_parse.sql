select id, raw, {{ skewless.to_utc_timestamp('raw') }} as ts
from {{ source('conformance', 'src_raw_ts') }}
