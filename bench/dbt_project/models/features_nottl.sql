select * from {{ ref('features') }}
