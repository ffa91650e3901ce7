-- One row per record that carries at least one usable identifier: the customer it belongs to.
-- Records whose only identifiers are junk belong to nobody (reported in identity_junk_identifiers).
select
    records.record_kind,
    records.record_id,
    min(identity.customer_key) as customer_key
from {{ ref('int_identity_records') }} as records
inner join {{ ref('int_identity') }} as identity
    on records.id_type = identity.id_type and records.id_value = identity.id_value
group by records.record_kind, records.record_id
