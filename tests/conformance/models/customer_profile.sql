select * from {{ source('conformance', 'src_customer_profile') }}
