select * from {{ source('conformance', 'src_odd_spine') }}
