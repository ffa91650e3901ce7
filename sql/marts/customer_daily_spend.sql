-- One row per customer and business day with a counted order (pack lift, BI drill-down).
select
    customer_key,
    {{ as_of_date }} as as_of_date,
    order_date,
    count(*) as orders,
    sum(net_amount) as spend
from {{ ref('int_customer_orders') }}
where is_counted
group by customer_key, order_date
