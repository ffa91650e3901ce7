-- One row per customer as of the start of the as-of day: order history, spend, repurchase rhythm,
-- preferences, source and engagement. Contacts who never ordered have a row with order_count 0.
with customers as (
    select * from {{ ref('int_customers') }}
),

-- Only the columns used below: a CTE read by several parts is materialized with what it carries.
-- Customers are joined on customer_no, their integer number inside this build (faster than the key).
orders as (
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

events as (
    select
        customer_no,
        event_type,
        duration_seconds,
        campaign_id
    from {{ ref('int_customer_events') }}
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

-- First and last order in one pass over each customer's orders in time order.
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

last_day_cycles as (
    select
        items.customer_no,
        max(items.cycle_days * items.quantity) as last_purchase_cycle_days
    from items
    inner join order_totals
        on items.customer_no = order_totals.customer_no and items.order_date = order_totals.last_order_date
    where items.cycle_days is not null
    group by items.customer_no
),

last_consumable_day as (
    select
        customer_no,
        max(order_date) as order_date
    from items
    where cycle_days is not null
    group by customer_no
),

replenishment as (
    -- Last purchase of consumables + cycle x quantity (the longest-lasting SKU bought that day).
    select
        items.customer_no,
        min(last_consumable_day.order_date) + cast(max(items.cycle_days * items.quantity) as integer)
            as replenishment_due_date
    from items
    inner join last_consumable_day
        on items.customer_no = last_consumable_day.customer_no and items.order_date = last_consumable_day.order_date
    where items.cycle_days is not null
    group by items.customer_no
),

category_spend as (
    select
        customer_no,
        category,
        row_number() over (partition by customer_no order by sum(line_amount) desc, category) as preference_rank
    from items
    where category is not null
    group by customer_no, category
),

subcategory_spend as (
    select
        customer_no,
        subcategory,
        row_number() over (partition by customer_no order by sum(line_amount) desc, subcategory) as preference_rank
    from items
    where subcategory is not null
    group by customer_no, subcategory
),

price_line_spend as (
    select
        customer_no,
        price_line,
        row_number() over (partition by customer_no order by sum(line_amount) desc, price_line) as preference_rank
    from items
    where price_line is not null
    group by customer_no, price_line
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
),

engagement as (
    select
        customer_no,
        count(case when event_type = 'content_view' then 1 end) as content_views,
        sum(case when event_type = 'content_view' then coalesce(duration_seconds, 0) else 0 end) as content_seconds,
        count(distinct case when event_type = 'campaign' then campaign_id end) as campaigns_joined,
        count(case when event_type = 'referral' then 1 end) as referrals,
        count(case when event_type = 'checkin' then 1 end) as checkins,
        count(*) as events
    from events
    group by customer_no
),

features as (
    select
        customers.customer_key,
        {{ as_of_date }} as as_of_date,
        -- first and last order
        order_totals.first_order_date,
        first_and_last_orders.first_order_channel,
        first_and_last_orders.first_order_amount,
        order_totals.last_order_date,
        first_and_last_orders.last_order_channel,
        -- counts and spend (CNY, net of refunds)
        coalesce(order_totals.order_count, 0) as order_count,
        coalesce(purchase_day_counts.purchase_days, 0) as purchase_days,
        coalesce(order_totals.total_spend, 0) as total_spend,
        spend_ranks.spend_percentile,
        order_totals.total_spend / nullif(order_totals.order_count, 0) as avg_order_value,
        {%- for days in trailing_windows_days %}
            coalesce(order_totals.orders_{{ days }}d, 0) as orders_{{ days }}d,
            coalesce(order_totals.spend_{{ days }}d, 0) as spend_{{ days }}d,
        {%- endfor %}
        coalesce(purchase_day_counts.purchase_days_730d, 0) as purchase_days_730d,
        -- rhythm
        date_diff('day', order_totals.last_order_date, {{ as_of_date }}) as recency_days,
        date_diff('day', order_totals.first_order_date, {{ as_of_date }}) as tenure_days,
        interval_stats.avg_repurchase_interval_days,
        interval_stats.median_repurchase_interval_days,
        interval_stats.last_repurchase_interval_days,
        interval_stats.max_repurchase_gap_days,
        order_totals.last_order_date + cast(round(coalesce(
            interval_stats.median_repurchase_interval_days,
            last_day_cycles.last_purchase_cycle_days,
            brand_rhythm.brand_median_interval_days
        )) as integer) as expected_next_order_date,
        order_totals.total_spend / (
            date_diff('month', order_totals.first_order_date, {{ date_before(1) }}) + 1
        ) as avg_monthly_spend,
        -- preferences
        category_spend.category as favorite_category,
        subcategory_spend.subcategory as favorite_subcategory,
        price_line_spend.price_line as favorite_price_line,
        cast(order_totals.gift_orders as double) / nullif(order_totals.order_count, 0) as gift_order_share,
        case
            when order_totals.order_count is null then null
            when cast(order_totals.gift_orders as double) / order_totals.order_count >= {{ purpose_gift_min_share }}
                then 'gift'
            when cast(order_totals.gift_orders as double) / order_totals.order_count <= {{ purpose_self_max_share }}
                then 'self'
            else 'mixed'
        end as purchase_purpose,
        preferred_hour_band.hour_band as preferred_hour_band,
        preferred_weekday.order_weekday as preferred_weekday,
        -- source
        customers.source_channel,
        customers.signup_date,
        date_diff('day', customers.signup_date, order_totals.first_order_date) as days_to_first_order,
        replenishment.replenishment_due_date,
        -- engagement
        coalesce(engagement.content_views, 0) as content_views,
        coalesce(engagement.content_seconds, 0) as content_seconds,
        coalesce(engagement.campaigns_joined, 0) as campaigns_joined,
        coalesce(engagement.referrals, 0) as referrals,
        coalesce(engagement.checkins, 0) as checkins,
        coalesce(engagement.events, 0) as events,
        -- who they are (portrait) and whether they may be contacted
        customers.contact_records,
        customers.gender,
        customers.birthday,
        date_diff('year', customers.birthday, {{ as_of_date }})
        - case
            when
                extract(month from customers.birthday) * 100 + extract(day from customers.birthday)
                > extract(month from {{ as_of_date }}) * 100 + extract(day from {{ as_of_date }})
                then 1
            else 0
        end as age,
        customers.city,
        customers.occupation,
        customers.life_stage,
        customers.is_member,
        customers.opted_out,
        customers.marketing_consent
    from customers
    cross join brand_rhythm
    left join order_totals on customers.customer_no = order_totals.customer_no
    left join first_and_last_orders
        on customers.customer_no = first_and_last_orders.customer_no and first_and_last_orders.order_rank = 1
    left join spend_ranks on customers.customer_no = spend_ranks.customer_no
    left join purchase_day_counts on customers.customer_no = purchase_day_counts.customer_no
    left join interval_stats on customers.customer_no = interval_stats.customer_no
    left join last_day_cycles on customers.customer_no = last_day_cycles.customer_no
    left join replenishment on customers.customer_no = replenishment.customer_no
    left join category_spend
        on customers.customer_no = category_spend.customer_no and category_spend.preference_rank = 1
    left join subcategory_spend
        on customers.customer_no = subcategory_spend.customer_no and subcategory_spend.preference_rank = 1
    left join price_line_spend
        on customers.customer_no = price_line_spend.customer_no and price_line_spend.preference_rank = 1
    left join preferred_hour_band
        on customers.customer_no = preferred_hour_band.customer_no and preferred_hour_band.preference_rank = 1
    left join preferred_weekday
        on customers.customer_no = preferred_weekday.customer_no and preferred_weekday.preference_rank = 1
    left join engagement on customers.customer_no = engagement.customer_no
)

select * from features
