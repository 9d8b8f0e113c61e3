select * from {{ source('conformance', 'src_driver_fresh') }}
