-- One row per distinct identifier seen before the cut-off: node_id, its integer key from ingest,
-- is the vertex the identity graph is built on; the type and value come from raw.identifier_keys.
-- Temporary: only models of its own build step read it.
{{ config(materialized='temporary') }}
with seen as (
    select
        node_id,
        min(seen_at) as first_seen_at,
        count(*) as records
    from {{ ref('int_identity_records') }}
    group by node_id
)

select
    identifier_keys.id_type,
    identifier_keys.id_value,
    seen.first_seen_at,
    seen.records,
    seen.node_id
from seen
inner join {{ source('identifier_keys') }} as identifier_keys
    on seen.node_id = identifier_keys.id_key
