-- One row per line of a counted order, with the product's category, price line and cycle.
-- A view: customer_features is its only reader, and writing 13M rows per 10M orders costs more.
{{ config(materialized='view') }}
select
    orders.customer_no,
    orders.order_id,
    orders.order_date,
    items.sku,
    items.quantity,
    coalesce(items.price, products.list_price, 0) * items.quantity as line_amount,
    products.category,
    products.subcategory,
    products.price_line,
    products.cycle_days
from {{ ref('int_customer_orders') }} as orders
inner join {{ ref('stg_order_items') }} as items
    on orders.order_id = items.order_id
left join {{ ref('stg_products') }} as products
    on items.sku = products.sku
where orders.is_counted
