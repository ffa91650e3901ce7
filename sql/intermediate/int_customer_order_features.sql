-- One row per customer with counted orders: what their orders say (counts, spend, first and last
-- order, purchase days and the intervals between them, preferred hour band and weekday), keyed by
-- customer_no. customer_features joins it with the item-level and engagement features; computing
-- them in separate models keeps each query small enough to spill to disk at 100M orders.
with orders as (
    select
        customer_no,
        order_id,
        channel,
        is_gift,
        net_amount,
        created_at,
        order_date,
        order_hour,
        order_weekday
    from {{ ref('int_customer_orders') }}
    where is_counted
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
        count(case when is_gift then 1 end) as gift_orders
    from orders
    group by customer_no
),

first_and_last_orders as (
    select
        customer_no,
        first_value(channel) over customer_orders as first_order_channel,
        first_value(net_amount) over customer_orders as first_order_amount,
        last_value(channel) over customer_orders as last_order_channel,
        row_number() over customer_orders as order_rank
    from orders
    window customer_orders as (
        partition by customer_no order by created_at, order_id
        rows between unbounded preceding and unbounded following
    )
),

spend_ranks as (
    select
        customer_no,
        percent_rank() over (order by total_spend) as spend_percentile
    from order_totals
),

purchase_days as (
    select distinct
        customer_no,
        order_date
    from orders
),

purchase_day_counts as (
    select
        customer_no,
        count(*) as purchase_days,
        count(case when order_date >= {{ date_before(730) }} then 1 end) as purchase_days_730d
    from purchase_days
    group by customer_no
),

intervals as (
    select
        customer_no,
        order_date,
        date_diff(
            'day', lag(order_date) over (partition by customer_no order by order_date), order_date
        ) as interval_days,
        row_number() over (partition by customer_no order by order_date desc) as recency_rank
    from purchase_days
),

interval_stats as (
    select
        customer_no,
        avg(interval_days) as avg_repurchase_interval_days,
        percentile_cont(0.5) within group (order by interval_days) as median_repurchase_interval_days,
        max(case when recency_rank = 1 then interval_days end) as last_repurchase_interval_days,
        max(interval_days) as max_repurchase_gap_days
    from intervals
    where interval_days is not null
    group by customer_no
),

brand_rhythm as (
    select percentile_cont(0.5) within group (order by interval_days) as brand_median_interval_days
    from intervals
    where interval_days is not null
),

order_hour_bands as (
    select
        customer_no,
        case
            {%- for band in hour_bands %}
                when order_hour >= {{ band.from_hour }} and order_hour < {{ band.to_hour }} then {{ lit(band.label) }}
            {%- endfor %}
        end as hour_band
    from orders
),

hour_bands as (
    select
        customer_no,
        hour_band,
        count(*) as orders_in_band
    from order_hour_bands
    group by customer_no, hour_band
),

preferred_hour_band as (
    select
        customer_no,
        hour_band,
        row_number() over (partition by customer_no order by orders_in_band desc, hour_band asc) as preference_rank
    from hour_bands
),

preferred_weekday as (
    select
        customer_no,
        order_weekday,
        row_number() over (partition by customer_no order by count(*) desc, order_weekday) as preference_rank
    from orders
    group by customer_no, order_weekday
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
    first_and_last_orders.first_order_channel,
    first_and_last_orders.first_order_amount,
    first_and_last_orders.last_order_channel,
    spend_ranks.spend_percentile,
    purchase_day_counts.purchase_days,
    purchase_day_counts.purchase_days_730d,
    interval_stats.avg_repurchase_interval_days,
    interval_stats.median_repurchase_interval_days,
    interval_stats.last_repurchase_interval_days,
    interval_stats.max_repurchase_gap_days,
    brand_rhythm.brand_median_interval_days,
    preferred_hour_band.hour_band as preferred_hour_band,
    preferred_weekday.order_weekday as preferred_weekday
from order_totals
cross join brand_rhythm
inner join first_and_last_orders
    on order_totals.customer_no = first_and_last_orders.customer_no and first_and_last_orders.order_rank = 1
inner join spend_ranks on order_totals.customer_no = spend_ranks.customer_no
inner join purchase_day_counts on order_totals.customer_no = purchase_day_counts.customer_no
left join interval_stats on order_totals.customer_no = interval_stats.customer_no
left join preferred_hour_band
    on order_totals.customer_no = preferred_hour_band.customer_no and preferred_hour_band.preference_rank = 1
left join preferred_weekday
    on order_totals.customer_no = preferred_weekday.customer_no and preferred_weekday.preference_rank = 1
