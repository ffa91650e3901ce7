-- One row per record that carries at least one usable identifier: the customer it belongs to.
-- Records whose only identifiers are junk belong to nobody (reported in identity_junk_identifiers).
-- A view: each reader asks for one kind of record, and writing 18M rows per 10M orders costs more.
{{ config(materialized='view') }}
with record_owners as (
    select
        edges.record_kind,
        edges.record_no,
        min(identity.customer_no) as customer_no
    from {{ ref('int_identity_edges') }} as edges
    inner join {{ ref('int_identity') }} as identity
        on edges.node_id = identity.node_id
    group by edges.record_kind, edges.record_no
),

customer_keys as (
    select distinct
        customer_no,
        customer_key
    from {{ ref('int_identity') }}
)

select
    record_owners.record_kind,
    record_owners.record_no,
    record_owners.customer_no,
    customer_keys.customer_key
from record_owners
inner join customer_keys
    on record_owners.customer_no = customer_keys.customer_no
