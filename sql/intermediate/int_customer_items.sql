-- One row per line of a counted order, with the product's category, subcategory and price line
-- (as their numbers in stg_products) and its consumption cycle.
-- A re-sent line (same order and sku) replaces the earlier one: the one loaded last wins, and
-- version_no is in load order. The versions are ranked after the join to the orders, so the
-- window partitions by the integer order_no instead of the order_id.
-- Temporary: three models of the features and insights steps read it (item features, purchased
-- items, category affinity); each reading it as a view repeated the join and the window over 13M
-- lines per 10M orders, which cost more than writing them once (bench/RESULTS.md).
{{ config(materialized='temporary') }}
with lines as (
    select
        orders.customer_no,
        orders.order_date,
        items.sku,
        coalesce(items.quantity, 1) as quantity,
        items.price,
        row_number() over (
            partition by orders.order_no, items.sku
            order by items.version_no desc
        ) as version_rank
    from {{ ref('int_customer_orders') }} as orders
    inner join {{ ref('stg_order_items') }} as items
        on orders.order_key = items.order_key
)

select
    lines.customer_no,
    lines.order_date,
    lines.sku,
    lines.quantity,
    coalesce(lines.price, products.list_price, 0) * lines.quantity as line_amount,
    products.category_no,
    products.subcategory_no,
    products.price_line_no,
    products.cycle_days
from lines
left join {{ ref('stg_products') }} as products
    on lines.sku = products.sku
where lines.version_rank = 1
