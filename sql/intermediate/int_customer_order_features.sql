-- One row per customer with counted orders: what their orders say (counts, spend, first and last
-- order, purchase days and the intervals between them, preferred hour band and weekday), keyed by
-- customer_no. customer_features joins it with the item-level and engagement features.
-- Memory: every per-customer part that is joined back holds a hash table per customer, and at 100M
-- orders three such joins at once did not spill (DuckDB "failed to pin block"). So the order-level
-- features come from one chronological window and one aggregate, and only the habits are joined.
-- Temporary: only models of its own build step read it.
{{ config(materialized='temporary') }}
with counted_orders as (
    select
        customer_no,
        order_id,
        channel,
        is_gift,
        net_amount,
        created_at,
        order_date,
        order_hour,
        order_weekday,
        lag(order_date) over chronological as previous_order_date,
        row_number() over chronological as order_rank,
        last_value(channel) over whole_history as last_order_channel,
        last_value(order_date) over whole_history as customer_last_order_date
    from {{ ref('int_customer_orders') }}
    window
        chronological as (partition by customer_no order by created_at, order_id),
        whole_history as (
            partition by customer_no order by created_at, order_id
            rows between unbounded preceding and unbounded following
        )
),

orders as (
    -- A purchase day is a business day with orders; intervals run from one purchase day to the
    -- next, so only the first order of a day carries one.
    select
        *,
        previous_order_date is null or previous_order_date <> order_date as starts_purchase_day,
        case
            when previous_order_date <> order_date then date_diff('day', previous_order_date, order_date)
        end as interval_days
    from counted_orders
),

order_totals as (
    select
        customer_no,
        count(*) as order_count,
        sum(net_amount) as total_spend,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        {%- for days in trailing_windows_days %}
            count(case when order_date >= {{ date_before(days) }} then 1 end) as orders_{{ days }}d,
            sum(case when order_date >= {{ date_before(days) }} then net_amount else 0 end) as spend_{{ days }}d,
        {%- endfor %}
        count(case when is_gift then 1 end) as gift_orders,
        max(case when order_rank = 1 then channel end) as first_order_channel,
        max(case when order_rank = 1 then net_amount end) as first_order_amount,
        max(last_order_channel) as last_order_channel,
        count(case when starts_purchase_day then 1 end) as purchase_days,
        count(case when starts_purchase_day and order_date >= {{ date_before(730) }} then 1 end) as purchase_days_730d,
        avg(interval_days) as avg_repurchase_interval_days,
        percentile_cont(0.5) within group (order by interval_days) as median_repurchase_interval_days,
        max(case when order_date = customer_last_order_date then interval_days end) as last_repurchase_interval_days,
        max(interval_days) as max_repurchase_gap_days
    from orders
    group by customer_no
),

brand_rhythm as (
    select percentile_cont(0.5) within group (order by interval_days) as brand_median_interval_days
    from orders
    where interval_days is not null
),

habit_counts as (
    select
        customer_no,
        'hour_band' as habit,
        case
            {%- for band in hour_bands %}
                when order_hour >= {{ band.from_hour }} and order_hour < {{ band.to_hour }} then {{ lit(band.label) }}
            {%- endfor %}
        end as habit_value,
        count(*) as habit_orders
    from orders
    group by customer_no, habit_value
    union all
    select
        customer_no,
        'weekday' as habit,
        cast(order_weekday as varchar) as habit_value,
        count(*) as habit_orders
    from orders
    group by customer_no, order_weekday
),

ranked_habits as (
    -- Ties go to the earlier band label or weekday, so reruns agree.
    select
        customer_no,
        habit,
        habit_value,
        row_number() over (partition by customer_no, habit order by habit_orders desc, habit_value asc) as habit_rank
    from habit_counts
),

habits as (
    select
        customer_no,
        max(case when habit = 'hour_band' then habit_value end) as preferred_hour_band,
        cast(max(case when habit = 'weekday' then habit_value end) as bigint) as preferred_weekday
    from ranked_habits
    where habit_rank = 1
    group by customer_no
)

select
    order_totals.customer_no,
    order_totals.order_count,
    order_totals.total_spend,
    order_totals.first_order_date,
    order_totals.last_order_date,
    {%- for days in trailing_windows_days %}
        order_totals.orders_{{ days }}d,
        order_totals.spend_{{ days }}d,
    {%- endfor %}
    order_totals.gift_orders,
    order_totals.first_order_channel,
    order_totals.first_order_amount,
    order_totals.last_order_channel,
    percent_rank() over (order by order_totals.total_spend) as spend_percentile,
    order_totals.purchase_days,
    order_totals.purchase_days_730d,
    order_totals.avg_repurchase_interval_days,
    order_totals.median_repurchase_interval_days,
    order_totals.last_repurchase_interval_days,
    order_totals.max_repurchase_gap_days,
    brand_rhythm.brand_median_interval_days,
    habits.preferred_hour_band,
    habits.preferred_weekday
from order_totals
cross join brand_rhythm
left join habits on order_totals.customer_no = habits.customer_no
