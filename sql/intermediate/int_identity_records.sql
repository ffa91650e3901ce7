-- One row per (record, identifier): every identifier seen on an order, contact, event or manual tag.
-- Identifiers that share a record belong to one person (identity stitching links them).
-- record_key: the record's kind and number as one integer, so the graph joins on one column.
-- A view: two models read it once each, and writing 20M rows per 10M orders costs more than that.
{{ config(materialized='view') }}
with records as (
    select
        {{ record_key('order_no', 'order') }} as record_key,
        phone,
        unionid,
        email,
        member_id,
        created_at as seen_at
    from {{ ref('stg_orders') }}
    union all
    select
        {{ record_key('record_no', 'contact') }} as record_key,
        phone,
        unionid,
        email,
        member_id,
        coalesce(signup_at, recorded_at) as seen_at
    from {{ ref('stg_contacts') }}
    union all
    select
        {{ record_key('record_no', 'event') }} as record_key,
        phone,
        unionid,
        email,
        member_id,
        occurred_at as seen_at
    from {{ ref('stg_events') }}
    union all
    select
        {{ record_key('record_no', 'manual_tag') }} as record_key,
        phone,
        unionid,
        email,
        member_id,
        tagged_at as seen_at
    from {{ ref('stg_manual_tags') }}
),

identifiers as (
    select
        record_key,
        'phone' as id_type,
        phone as id_value,
        seen_at
    from records
    where phone is not null
    union all
    select
        record_key,
        'unionid' as id_type,
        unionid as id_value,
        seen_at
    from records
    where unionid is not null
    union all
    select
        record_key,
        'email' as id_type,
        email as id_value,
        seen_at
    from records
    where email is not null
    union all
    select
        record_key,
        'member_id' as id_type,
        member_id as id_value,
        seen_at
    from records
    where member_id is not null
)

select * from identifiers
