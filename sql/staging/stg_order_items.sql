-- One row per order line (order_id, sku); a re-sent line replaces the earlier one.
-- A view: int_customer_items is its only reader, and writing 14M rows per 10M orders costs more.
{{ config(materialized='view') }}
with ranked as (
    select
        items.order_id,
        items.sku,
        items.quantity,
        items.price,
        row_number() over (
            partition by items.order_id, items.sku
            order by items._loaded_at desc, items._line desc, items._file desc
        ) as version_rank
    from {{ source('order_items') }} as items
)

select
    order_id,
    sku,
    coalesce(quantity, 1) as quantity,
    price
from ranked
where version_rank = 1
