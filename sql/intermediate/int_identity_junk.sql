-- One row per junk identifier: linked to more distinct other identifiers than a person has (a shop
-- phone, "0000", a test email) or on the blocklist. Junk is not used to stitch people together.
-- Temporary: only models of its own build step read it.
{{ config(materialized='temporary') }}
with edges as (
    select * from {{ ref('int_identity_edges') }}
),

pairs as (
    select distinct
        a.node_id,
        b.node_id as other_node_id
    from edges as a
    inner join edges as b
        on a.record_key = b.record_key and a.node_id <> b.node_id
),

links as (
    select
        node_id,
        count(*) as linked_identifiers
    from pairs
    group by node_id
),

nodes as (
    select
        nodes.node_id,
        nodes.id_type,
        nodes.id_value,
        nodes.records,
        coalesce(links.linked_identifiers, 0) as linked_identifiers
    from {{ ref('int_identity_nodes') }} as nodes
    left join links
        on nodes.node_id = links.node_id
)

select
    node_id,
    id_type,
    id_value,
    records,
    linked_identifiers
from nodes
where
    linked_identifiers > {{ max_links_per_identifier }}
    {%- for blocked in identity_blocklist %}
        or (id_type = {{ lit(blocked.id_type) }} and id_value = {{ lit(blocked.id_value) }})
    {%- endfor %}
