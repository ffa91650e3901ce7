-- One row per distinct identifier, with how many other identifiers it was seen with.
-- An identifier linked to too many others (a shop phone, "0000", a test email) or on the
-- blocklist is junk: it is not used to stitch people together.
with identifiers as (
    select * from {{ ref('int_identity_records') }}
),

-- Only records that carry two or more identifiers link anything.
linking_records as (
    select
        record_kind,
        record_id
    from identifiers
    group by record_kind, record_id
    having count(*) > 1
),

linking_identifiers as (
    select identifiers.*
    from identifiers
    inner join linking_records
        on identifiers.record_kind = linking_records.record_kind and identifiers.record_id = linking_records.record_id
),

pairs as (
    select distinct
        a.id_type,
        a.id_value,
        b.id_type as other_type,
        b.id_value as other_value
    from linking_identifiers as a
    inner join linking_identifiers as b
        on a.record_kind = b.record_kind and a.record_id = b.record_id
    where a.id_type <> b.id_type or a.id_value <> b.id_value
),

links as (
    select
        id_type,
        id_value,
        count(*) as linked_identifiers
    from pairs
    group by id_type, id_value
),

nodes as (
    select
        id_type,
        id_value,
        min(seen_at) as first_seen_at,
        count(*) as records
    from identifiers
    group by id_type, id_value
)

select
    nodes.id_type,
    nodes.id_value,
    nodes.first_seen_at,
    nodes.records,
    coalesce(links.linked_identifiers, 0) as linked_identifiers,
    (
        coalesce(links.linked_identifiers, 0) > {{ max_links_per_identifier }}
        {%- for blocked in identity_blocklist %}
            or (nodes.id_type = {{ lit(blocked.id_type) }} and nodes.id_value = {{ lit(blocked.id_value) }})
        {%- endfor %}
    ) as is_junk,
    row_number() over (order by nodes.id_type, nodes.id_value) - 1 as node_id
from nodes
left join links
    on nodes.id_type = links.id_type and nodes.id_value = links.id_value
