-- One row per order: its version as known at the start of the as-of day.
-- The latest version updated before the cut-off wins; an order first delivered after the cut-off
-- (late data) is read from its earliest version. Refunds count only when dated before the cut-off.
-- Versions updated at the same time go to the one loaded last (version_no: ingest run, file path,
-- line), so a rerun picks the same row.
-- order_key: the order's integer key, given at ingest (raw.order_keys) and never changed; the
-- version window partitions by it and later models join order lines on it instead of order_id.
-- order_no: the record number of the order's version inside one build (identity stitching's key).
-- phone_key ... external_userid_key: the identifiers' integer keys from ingest (raw.identifier_keys),
-- all that identity stitching reads of them; the values stay in raw.orders.
with landed_files as (
    {{ landed_files(source('orders')) }}
),

-- The version window sorts every column it carries, so it ranks the versions by their keys alone;
-- the winners' columns are read in a second pass over the raw rows. The two passes are written out
-- rather than shared: DuckDB materializes a CTE read twice, which made this model slower.
version_keys as (
    select
        orders._order_key,
        coalesce(orders.updated_at, orders.created_at) as version_at,
        landed_files.line_offset + orders._line as version_no
    from {{ source('orders') }} as orders
    inner join landed_files
        on orders._batch = landed_files._batch and orders._file = landed_files._file
    where orders.created_at < {{ as_of_ts }}
),

ranked as (
    select
        version_no,
        row_number() over (
            partition by _order_key
            order by {{ version_rank_order('version_at', 'version_no', as_of_ts) }}
        ) as version_rank
    from version_keys
),

versions as (
    select
        orders._order_key as order_key,
        orders.created_at,
        orders.updated_at,
        orders.paid_at,
        orders.status,
        orders.amount,
        orders.refund_amount,
        orders.refunded_at,
        orders.channel,
        orders.is_gift,
        orders._phone_key as phone_key,
        orders._unionid_key as unionid_key,
        orders._email_key as email_key,
        orders._member_id_key as member_id_key,
        orders._external_userid_key as external_userid_key,
        landed_files.line_offset + orders._line as version_no
    from {{ source('orders') }} as orders
    inner join landed_files
        on orders._batch = landed_files._batch and orders._file = landed_files._file
    where orders.created_at < {{ as_of_ts }}
),

current_version as (
    select
        versions.order_key,
        versions.version_no as order_no,
        versions.created_at,
        versions.paid_at,
        versions.status,
        versions.amount,
        versions.refund_amount,
        versions.channel,
        coalesce(versions.is_gift, false) as is_gift,
        versions.phone_key,
        versions.unionid_key,
        versions.email_key,
        versions.member_id_key,
        versions.external_userid_key,
        coalesce(versions.refunded_at, versions.updated_at, versions.created_at) as refund_effective_at
    from versions
    inner join ranked
        on versions.version_no = ranked.version_no
    where ranked.version_rank = 1
),

refunds as (
    select
        current_version.*,
        current_version.status in ('refunded', 'partially_refunded')
        and current_version.refund_effective_at < {{ as_of_ts }} as is_refund_known,
        current_version.status in ('paid', 'shipped', 'completed', 'refunded', 'partially_refunded')
        and (current_version.paid_at is null or current_version.paid_at < {{ as_of_ts }}) as is_paid
    from current_version
),

amounts as (
    select
        refunds.*,
        case
            when not refunds.is_refund_known then 0
            when refunds.status = 'refunded' then refunds.amount
            else least(coalesce(refunds.refund_amount, 0), refunds.amount)
        end as refunded_amount
    from refunds
)

-- Only what its readers use (identity stitching, int_customer_orders, the staging checks): writing
-- 10M rows costs more per string column than computing it. order_id, status, gross and refunded
-- amounts and paid_at stay in raw.orders.
select
    -- ids
    order_key,
    order_no,
    phone_key,
    unionid_key,
    email_key,
    member_id_key,
    external_userid_key,
    -- attributes
    channel,
    is_gift,
    -- amount (CNY): paid, net of refunds known before the cut-off
    amount - refunded_amount as net_amount,
    -- flags: a paid order counts until it is fully refunded; a paid order of amount 0 (a free
    -- sample, 0元试用) is a purchase occasion with zero spend
    is_paid and not (
        is_refund_known and (status = 'refunded' or (amount > 0 and refunded_amount >= amount))
    ) as is_counted,
    -- timestamps (business-day dates are derived in int_customer_orders, for counted orders only)
    created_at
from amounts
