select * from {{ source('conformance', 'src_spine') }}
