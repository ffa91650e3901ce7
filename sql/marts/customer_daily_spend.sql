-- One row per customer and business day with a counted order (pack lift, BI drill-down).
-- Summed per customer_no and given the customer_key after, which is cheaper than grouping by the key.
with spend as (
    select
        customer_no,
        order_date,
        count(*) as orders,
        sum(net_amount) as spend
    from {{ ref('int_customer_orders') }}
    group by customer_no, order_date
)

select
    customers.customer_key,
    {{ as_of_date }} as as_of_date,
    spend.order_date,
    spend.orders,
    spend.spend
from spend
inner join {{ ref('int_customers') }} as customers
    on spend.customer_no = customers.customer_no
