-- One row per identifier not used for stitching (shared by too many people, or blocklisted).
select
    {{ as_of_date }} as as_of_date,
    id_type,
    id_value,
    records,
    linked_identifiers
from {{ ref('int_identity_junk') }}
