-- One row per junk identifier: linked to more distinct other identifiers than a person has (a shop
-- phone, "0000", a test email), on the blocklist, or named by a do-not-link rule that says it never
-- links anything. Junk is not used to stitch people together.
-- Temporary: only models of its own build step read it.
{{ config(materialized='temporary') }}
-- Every pair of identifiers on one record, lower key first, read from the staging rows one pair of
-- identifier columns at a time. Keys are one space across the types, so the two columns of a pair
-- never hold the same key. A record with one identifier (most of them) makes no pair, so this
-- is cheaper than the self-join of every record's identifiers it replaced (bench/RESULTS.md).
with record_pairs as (
    {%- for source in identity_sources %}
        {%- set last_source = loop.last %}
        {%- for first_type, second_type in identifier_pairs %}
            select
                least({{ first_type }}_key, {{ second_type }}_key) as node_id,
                greatest({{ first_type }}_key, {{ second_type }}_key) as other_node_id
            from {{ ref(source.model) }}
            where {{ first_type }}_key is not null and {{ second_type }}_key is not null
            {{ "union all" if not (last_source and loop.last) }}
        {%- endfor %}
    {%- endfor %}
),

pairs as (
    select distinct
        node_id,
        other_node_id
    from record_pairs
),

links as (
    select
        node_id,
        count(*) as linked_identifiers
    from (
        select node_id from pairs
        union all
        select other_node_id as node_id from pairs
    ) as pair_ends
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
),

-- reason: why it is ignored, as `segflow whois` and identity_junk_identifiers show it. A rule or
-- the blocklist is named before the count, which may be over the limit too.
listed as (
    select
        node_id,
        id_type,
        id_value,
        records,
        linked_identifiers,
        case
            {%- for blocked in identity_blocklist %}
                when id_type = {{ lit(blocked.id_type) }} and id_value = {{ lit(blocked.id_value) }}
                    then 'identity.blocklist'
            {%- endfor %}
            {%- for rule in identity_never_link %}
                when id_type = {{ lit(rule.id_type) }} and id_value = {{ lit(rule.id_value) }}
                    then {{ lit(rule.rule) }}
            {%- endfor %}
            when linked_identifiers > {{ max_links_per_identifier }}
                then
                    'linked to ' || cast(linked_identifiers as varchar)
                    || ' other identifiers, more than identity.max_links_per_identifier ({{ max_links_per_identifier }})'
        end as reason
    from nodes
)

select
    node_id,
    id_type,
    id_value,
    records,
    linked_identifiers,
    reason
from listed
where reason is not null
