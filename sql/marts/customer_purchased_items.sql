-- One row per customer and SKU bought in a counted order (paid, not fully refunded) before the
-- as-of date: what bought() in tags, segments, packs and routes reads, and what action_cross_sell
-- counts. Summed per customer_no and given the customer_key after.
with bought as (
    select
        customer_no,
        sku,
        min(order_date) as first_bought_date,
        max(order_date) as last_bought_date,
        count(*) as orders,
        sum(quantity) as quantity
    from {{ ref('int_customer_items') }}
    group by customer_no, sku
)

select
    customers.customer_key,
    {{ as_of_date }} as as_of_date,
    bought.sku,
    products.category,
    products.subcategory,
    bought.first_bought_date,
    bought.last_bought_date,
    bought.orders,
    bought.quantity
from bought
inner join {{ ref('int_customers') }} as customers
    on bought.customer_no = customers.customer_no
left join {{ ref('stg_products') }} as products
    on bought.sku = products.sku
