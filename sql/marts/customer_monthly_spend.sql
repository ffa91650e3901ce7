-- One row per customer and calendar month with a counted order: orders and net spend (CNY).
-- Summed per customer_no and given the customer_key after, which is cheaper than grouping by the key.
with spend as (
    select
        customer_no,
        cast(date_trunc('month', order_date) as date) as month,
        count(*) as orders,
        sum(net_amount) as spend
    from {{ ref('int_customer_orders') }}
    group by customer_no, cast(date_trunc('month', order_date) as date)
)

select
    customers.customer_key,
    {{ as_of_date }} as as_of_date,
    spend.month,
    spend.orders,
    spend.spend
from spend
inner join {{ ref('int_customers') }} as customers
    on spend.customer_no = customers.customer_no
