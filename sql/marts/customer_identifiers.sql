-- One row per usable identifier: which customer it belongs to (look a customer up by phone etc.).
select
    customer_key,
    {{ as_of_date }} as as_of_date,
    id_type,
    id_value,
    first_seen_at
from {{ ref('int_identity') }}
