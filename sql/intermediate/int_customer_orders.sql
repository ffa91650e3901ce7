-- One row per order that belongs to a customer, with the flags that decide whether it counts.
-- customer_no and order_no: the customer and the order as integers, for joins inside this build.
select
    customers.customer_no,
    orders.order_id,
    orders.order_no,
    orders.status,
    orders.channel,
    orders.is_gift,
    orders.amount,
    orders.refunded_amount,
    orders.net_amount,
    orders.is_paid,
    orders.is_counted,
    orders.created_at,
    orders.order_date,
    orders.order_hour,
    orders.order_weekday
from {{ ref('stg_orders') }} as orders
inner join {{ ref('int_record_customers') }} as customers
    on customers.record_kind = 'order' and orders.order_no = customers.record_no
