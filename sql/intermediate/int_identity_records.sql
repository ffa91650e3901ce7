-- One row per (record, identifier): every identifier seen on an order, contact, event or manual tag.
-- Identifiers that share a record belong to one person (identity stitching links them).
-- record_key: the record's kind and number as one integer, so the graph joins on one column.
-- node_id: the identifier's integer key from ingest (raw.identifier_keys), one key space for all
-- identifier types, so the graph never hashes the identifier strings.
-- A view: two models read it once each, and writing 20M rows per 10M orders costs more than that.
-- Each identifier column is read from its source on its own: one column read four times costs
-- less than holding all four in a union of every record (DuckDB materializes such a CTE).
{{ config(materialized='view') }}
{%- for source in identity_sources %}
    {%- for id_type in identifier_types %}
        select
            {{ record_key(source.record_no, source.kind) }} as record_key,
            {{ id_type }}_key as node_id,
            {{ source.seen_at }} as seen_at
        from {{ ref(source.model) }}
        where {{ id_type }}_key is not null
        {{ "union all" if not loop.last }}
    {%- endfor %}
    {{ "union all" if not loop.last }}
{%- endfor %}
