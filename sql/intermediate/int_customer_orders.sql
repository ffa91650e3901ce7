-- One row per counted order (paid, not fully refunded) that belongs to a customer: every reader
-- counts only these, so the other orders are not written again (13% of the rows at 10M orders).
-- customer_no and order_no: the customer and the order as integers, for joins inside this build;
-- order_key: the order's key from ingest, which its lines carry too.
-- Owners come from int_record_labels, not int_record_customers: every labelled record's customer is
-- in int_identity, and the join that adds customer_key costs CPU for a column this model does not
-- write (bench/RESULTS.md).
select
    customers.customer_no,
    orders.order_key,
    orders.order_no,
    orders.channel,
    orders.is_gift,
    orders.net_amount,
    orders.created_at,
    cast(orders.created_at at time zone {{ timezone }} as date) as order_date,
    extract(hour from orders.created_at at time zone {{ timezone }}) as order_hour,
    extract(isodow from orders.created_at at time zone {{ timezone }}) as order_weekday
from {{ ref('stg_orders') }} as orders
inner join {{ ref('int_record_labels') }} as customers
    on customers.record_kind = 'order' and orders.order_no = customers.record_no
where orders.is_counted
