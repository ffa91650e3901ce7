-- One row per distinct identifier, numbered: node_id is the integer the identity graph is built on.
-- Temporary: only models of its own build step read it.
{{ config(materialized='temporary') }}
select
    id_type,
    id_value,
    min(seen_at) as first_seen_at,
    count(*) as records,
    row_number() over (order by id_type, id_value) - 1 as node_id
from {{ ref('int_identity_records') }}
group by id_type, id_value
