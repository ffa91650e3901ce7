-- Monthly first-order cohorts and the share of each cohort who bought again k months later.
with orders as (
    select
        customer_no,
        cast(date_trunc('month', order_date) as date) as order_month
    from {{ ref('int_customer_orders') }}
),

cohorts as (
    select
        customer_no,
        min(order_month) as cohort_month
    from orders
    group by customer_no
),

cohort_sizes as (
    select
        cohort_month,
        count(*) as cohort_customers
    from cohorts
    group by cohort_month
),

activity as (
    select distinct
        cohorts.cohort_month,
        orders.customer_no,
        date_diff('month', cohorts.cohort_month, orders.order_month) as months_since_first
    from orders
    inner join cohorts on orders.customer_no = cohorts.customer_no
)

select
    {{ as_of_date }} as as_of_date,
    activity.cohort_month,
    cohort_sizes.cohort_customers,
    activity.months_since_first,
    count(*) as customers_returning,
    cast(count(*) as double) / cohort_sizes.cohort_customers as retention_rate
from activity
inner join cohort_sizes on activity.cohort_month = cohort_sizes.cohort_month
where activity.months_since_first >= 1
group by activity.cohort_month, cohort_sizes.cohort_customers, activity.months_since_first
