-- One row per customer with counted orders: what the lines of their orders say (favourite category,
-- subcategory and price line by spend, the consumption cycle of the last purchase day, the
-- replenishment due date), keyed by customer_no. See int_customer_order_features.
-- The lines are read once into two summaries (per purchase day, per product line); every feature
-- is computed from those, which are smaller than the lines.
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
        category,
        subcategory,
        price_line,
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
        category,
        subcategory,
        price_line,
        sum(line_amount) as spend
    from items
    group by customer_no, category, subcategory, price_line
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
        category,
        row_number() over (partition by customer_no order by sum(spend) desc, category) as preference_rank
    from line_spend
    where category is not null
    group by customer_no, category
),

subcategory_spend as (
    select
        customer_no,
        subcategory,
        row_number() over (partition by customer_no order by sum(spend) desc, subcategory) as preference_rank
    from line_spend
    where subcategory is not null
    group by customer_no, subcategory
),

price_line_spend as (
    select
        customer_no,
        price_line,
        row_number() over (partition by customer_no order by sum(spend) desc, price_line) as preference_rank
    from line_spend
    where price_line is not null
    group by customer_no, price_line
)

select
    last_orders.customer_no,
    last_day_cycles.last_purchase_cycle_days,
    replenishment.replenishment_due_date,
    category_spend.category as favorite_category,
    subcategory_spend.subcategory as favorite_subcategory,
    price_line_spend.price_line as favorite_price_line
from last_orders
left join last_day_cycles on last_orders.customer_no = last_day_cycles.customer_no
left join replenishment on last_orders.customer_no = replenishment.customer_no
left join category_spend
    on last_orders.customer_no = category_spend.customer_no and category_spend.preference_rank = 1
left join subcategory_spend
    on last_orders.customer_no = subcategory_spend.customer_no and subcategory_spend.preference_rank = 1
left join price_line_spend
    on last_orders.customer_no = price_line_spend.customer_no and price_line_spend.preference_rank = 1
