-- One row per (record, identifier) as integers: the edges of the identity graph.
-- Temporary: only models of its own build step read it.
{{ config(materialized='temporary') }}
select
    records.record_key,
    nodes.node_id
from {{ ref('int_identity_records') }} as records
inner join {{ ref('int_identity_nodes') }} as nodes
    on records.id_type = nodes.id_type and records.id_value = nodes.id_value
