-- One row per customer and calendar month with a counted order: orders and net spend (CNY).
select
    customer_key,
    {{ as_of_date }} as as_of_date,
    cast(date_trunc('month', order_date) as date) as month,
    count(*) as orders,
    sum(net_amount) as spend
from {{ ref('int_customer_orders') }}
where is_counted
group by customer_key, cast(date_trunc('month', order_date) as date)
