-- One row per record that carries at least one usable identifier: the customer it belongs to.
-- Records whose only identifiers are junk belong to nobody (reported in identity_junk_identifiers).
select
    edges.record_kind,
    edges.record_no,
    min(identity.customer_key) as customer_key
from {{ ref('int_identity_edges') }} as edges
inner join {{ ref('int_identity') }} as identity
    on edges.node_id = identity.node_id
group by edges.record_kind, edges.record_no
