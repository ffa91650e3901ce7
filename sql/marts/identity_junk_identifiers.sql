-- One row per identifier not used for stitching (shared by too many people, blocklisted, or cut by
-- a do-not-link rule), with the reason.
select
    {{ as_of_date }} as as_of_date,
    id_type,
    id_value,
    records,
    linked_identifiers,
    reason
from {{ ref('int_identity_junk') }}
