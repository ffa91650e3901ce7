-- One row per (record, identifier): every identifier seen on an order, contact, event or manual tag.
-- Identifiers that share a record belong to one person (identity stitching links them).
-- A view: two models read it once each, and writing 20M rows per 10M orders costs more than that.
{{ config(materialized='view') }}
with records as (
    select
        'order' as record_kind,
        order_no as record_no,
        phone,
        unionid,
        email,
        member_id,
        created_at as seen_at
    from {{ ref('stg_orders') }}
    union all
    select
        'contact' as record_kind,
        record_no,
        phone,
        unionid,
        email,
        member_id,
        coalesce(signup_at, recorded_at) as seen_at
    from {{ ref('stg_contacts') }}
    union all
    select
        'event' as record_kind,
        record_no,
        phone,
        unionid,
        email,
        member_id,
        occurred_at as seen_at
    from {{ ref('stg_events') }}
    union all
    select
        'manual_tag' as record_kind,
        record_no,
        phone,
        unionid,
        email,
        member_id,
        tagged_at as seen_at
    from {{ ref('stg_manual_tags') }}
),

identifiers as (
    select
        record_kind,
        record_no,
        'phone' as id_type,
        phone as id_value,
        seen_at
    from records
    where phone is not null
    union all
    select
        record_kind,
        record_no,
        'unionid' as id_type,
        unionid as id_value,
        seen_at
    from records
    where unionid is not null
    union all
    select
        record_kind,
        record_no,
        'email' as id_type,
        email as id_value,
        seen_at
    from records
    where email is not null
    union all
    select
        record_kind,
        record_no,
        'member_id' as id_type,
        member_id as id_value,
        seen_at
    from records
    where member_id is not null
)

select * from identifiers
