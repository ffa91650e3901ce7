-- One row per customer with counted orders: what the lines of their orders say (favourite category,
-- subcategory and price line by spend, the consumption cycle of the last purchase day, the
-- replenishment due date), keyed by customer_no. See int_customer_order_features.
-- The lines are read once into two summaries (per purchase day, per product line); every feature
-- is computed from those, which are smaller than the lines. Categories, subcategories and price
-- lines are summed and ranked by their numbers (see stg_products) and named at the end.
-- Temporary: only models of its own build step read it.
{{ config(materialized='temporary') }}
with last_orders as (
    select
        customer_no,
        last_order_date
    from {{ ref('int_customer_order_features') }}
),

items as (
    select
        customer_no,
        order_date,
        quantity,
        line_amount,
        category_no,
        subcategory_no,
        price_line_no,
        cycle_days
    from {{ ref('int_customer_items') }}
),

-- How long the consumables bought on each purchase day last (the longest-lasting SKU: cycle x quantity).
day_cycles as (
    select
        customer_no,
        order_date,
        max(cycle_days * quantity) as cycle_days
    from items
    where cycle_days is not null
    group by customer_no, order_date
),

line_spend as (
    select
        customer_no,
        category_no,
        subcategory_no,
        price_line_no,
        sum(line_amount) as spend
    from items
    group by customer_no, category_no, subcategory_no, price_line_no
),

last_day_cycles as (
    select
        day_cycles.customer_no,
        day_cycles.cycle_days as last_purchase_cycle_days
    from day_cycles
    inner join last_orders
        on day_cycles.customer_no = last_orders.customer_no and day_cycles.order_date = last_orders.last_order_date
),

last_consumable_day as (
    select
        customer_no,
        max(order_date) as order_date
    from day_cycles
    group by customer_no
),

replenishment as (
    -- Last purchase of consumables + how long they last.
    select
        day_cycles.customer_no,
        day_cycles.order_date + cast(day_cycles.cycle_days as integer) as replenishment_due_date
    from day_cycles
    inner join last_consumable_day
        on
            day_cycles.customer_no = last_consumable_day.customer_no
            and day_cycles.order_date = last_consumable_day.order_date
),

category_spend as (
    select
        customer_no,
        category_no,
        row_number() over (partition by customer_no order by sum(spend) desc, category_no) as preference_rank
    from line_spend
    where category_no is not null
    group by customer_no, category_no
),

category_names as (
    select distinct
        category_no,
        category
    from {{ ref('stg_products') }}
    where category_no is not null
),

subcategory_spend as (
    select
        customer_no,
        subcategory_no,
        row_number() over (partition by customer_no order by sum(spend) desc, subcategory_no) as preference_rank
    from line_spend
    where subcategory_no is not null
    group by customer_no, subcategory_no
),

subcategory_names as (
    select distinct
        subcategory_no,
        subcategory
    from {{ ref('stg_products') }}
    where subcategory_no is not null
),

price_line_spend as (
    select
        customer_no,
        price_line_no,
        row_number() over (partition by customer_no order by sum(spend) desc, price_line_no) as preference_rank
    from line_spend
    where price_line_no is not null
    group by customer_no, price_line_no
),

price_line_names as (
    select distinct
        price_line_no,
        price_line
    from {{ ref('stg_products') }}
    where price_line_no is not null
)

select
    last_orders.customer_no,
    last_day_cycles.last_purchase_cycle_days,
    replenishment.replenishment_due_date,
    category_names.category as favorite_category,
    subcategory_names.subcategory as favorite_subcategory,
    price_line_names.price_line as favorite_price_line
from last_orders
left join last_day_cycles on last_orders.customer_no = last_day_cycles.customer_no
left join replenishment on last_orders.customer_no = replenishment.customer_no
left join category_spend
    on last_orders.customer_no = category_spend.customer_no and category_spend.preference_rank = 1
left join category_names on category_spend.category_no = category_names.category_no
left join subcategory_spend
    on last_orders.customer_no = subcategory_spend.customer_no and subcategory_spend.preference_rank = 1
left join subcategory_names on subcategory_spend.subcategory_no = subcategory_names.subcategory_no
left join price_line_spend
    on last_orders.customer_no = price_line_spend.customer_no and price_line_spend.preference_rank = 1
left join price_line_names on price_line_spend.price_line_no = price_line_names.price_line_no
