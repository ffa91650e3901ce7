-- One row per customer as of the start of the as-of day: order history, spend, repurchase rhythm,
-- preferences, source and engagement. Contacts who never ordered have a row with order_count 0.
-- Order-level and item-level features come from their own models (int_customer_order_features,
-- int_customer_item_features), joined here on customer_no, the customer's integer inside this build.
with customers as (
    select * from {{ ref('int_customers') }}
),

order_features as (
    select * from {{ ref('int_customer_order_features') }}
),

item_features as (
    select * from {{ ref('int_customer_item_features') }}
),

events as (
    select
        customer_no,
        event_type,
        duration_seconds
    from {{ ref('int_customer_events') }}
),

-- Distinct campaigns per customer from their own scan of the campaign events: a count(distinct)
-- beside the other counts made DuckDB hold all 6.3M events for a second pass (0.7 s at 10M orders).
campaigns as (
    select
        customer_no,
        count(*) as campaigns_joined
    from (
        select distinct
            customer_no,
            campaign_id
        from {{ ref('int_customer_events') }}
        where event_type = 'campaign' and campaign_id is not null
    ) as joined_campaigns
    group by customer_no
),

engagement as (
    select
        customer_no,
        count(case when event_type = 'content_view' then 1 end) as content_views,
        -- bigint, not the 128-bit sum: history snapshots are kept in Parquet, which has no 128-bit integer
        cast(sum(case when event_type = 'content_view' then coalesce(duration_seconds, 0) else 0 end) as bigint)
            as content_seconds,
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
        order_features.first_order_date,
        order_features.first_order_channel,
        order_features.first_order_amount,
        order_features.last_order_date,
        order_features.last_order_channel,
        -- counts and spend (CNY, net of refunds)
        coalesce(order_features.order_count, 0) as order_count,
        coalesce(order_features.purchase_days, 0) as purchase_days,
        coalesce(order_features.total_spend, 0) as total_spend,
        order_features.spend_percentile,
        order_features.total_spend / nullif(order_features.order_count, 0) as avg_order_value,
        {%- for days in trailing_windows_days %}
            coalesce(order_features.orders_{{ days }}d, 0) as orders_{{ days }}d,
            coalesce(order_features.spend_{{ days }}d, 0) as spend_{{ days }}d,
        {%- endfor %}
        coalesce(order_features.purchase_days_730d, 0) as purchase_days_730d,
        -- rhythm
        date_diff('day', order_features.last_order_date, {{ as_of_date }}) as recency_days,
        date_diff('day', order_features.first_order_date, {{ as_of_date }}) as tenure_days,
        order_features.avg_repurchase_interval_days,
        order_features.median_repurchase_interval_days,
        order_features.last_repurchase_interval_days,
        order_features.max_repurchase_gap_days,
        order_features.last_order_date + cast(round(coalesce(
            order_features.median_repurchase_interval_days,
            item_features.last_purchase_cycle_days,
            order_features.brand_median_interval_days
        )) as integer) as expected_next_order_date,
        order_features.total_spend / (
            date_diff('month', order_features.first_order_date, {{ date_before(1) }}) + 1
        ) as avg_monthly_spend,
        -- preferences
        item_features.favorite_category as favorite_category,
        item_features.favorite_subcategory as favorite_subcategory,
        item_features.favorite_price_line as favorite_price_line,
        cast(order_features.gift_orders as double) / nullif(order_features.order_count, 0) as gift_order_share,
        case
            when order_features.order_count is null then null
            when cast(order_features.gift_orders as double) / order_features.order_count >= {{ purpose_gift_min_share }}
                then 'gift'
            when cast(order_features.gift_orders as double) / order_features.order_count <= {{ purpose_self_max_share }}
                then 'self'
            else 'mixed'
        end as purchase_purpose,
        order_features.preferred_hour_band,
        order_features.preferred_weekday,
        -- source
        customers.source_channel,
        customers.signup_date,
        date_diff('day', customers.signup_date, order_features.first_order_date) as days_to_first_order,
        item_features.replenishment_due_date,
        -- engagement
        coalesce(engagement.content_views, 0) as content_views,
        coalesce(engagement.content_seconds, 0) as content_seconds,
        coalesce(campaigns.campaigns_joined, 0) as campaigns_joined,
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
    left join order_features on customers.customer_no = order_features.customer_no
    left join item_features on customers.customer_no = item_features.customer_no
    left join engagement on customers.customer_no = engagement.customer_no
    left join campaigns on customers.customer_no = campaigns.customer_no
)

select * from features
