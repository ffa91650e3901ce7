-- One row per (record, identifier) as integers: the edges of the identity graph.
-- Temporary: only models of its own build step read it (the junk check and the stitch).
{{ config(materialized='temporary') }}
select
    record_key,
    node_id
from {{ ref('int_identity_records') }}
