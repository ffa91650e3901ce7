-- One row per customer with counted orders: what their orders say (counts, spend, first and last
-- order, purchase days and the intervals between them, preferred hour band and weekday), keyed by
-- customer_no. customer_features joins it with the item-level and engagement features.
-- Memory: every per-customer part that is joined back holds a hash table per customer, and at 100M
-- orders three such joins at once did not spill (DuckDB "failed to pin block"). So the order-level
-- features come from one chronological window and one aggregate.
-- Habits (preferred hour band and weekday) are counted per band and weekday in that aggregate and
-- the most frequent is picked from the counts; ties go to the earlier band label or weekday, so
-- reruns agree. A ranking window over per-habit counts was a sixth of this model's time.
-- Orders created at the same instant are taken in order_key order (numbered as loaded: an earlier
-- ingest first, by order_id within one), so reruns agree on the first order's channel.
-- Temporary: only models of its own build step read it.
{{ config(materialized='temporary') }}
{%- set band_labels = hour_bands | map(attribute='label') | unique | sort | list %}
{%- set weekdays = range(1, 8) | list %}
with counted_orders as (
    select
        customer_no,
        order_key,
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
        chronological as (partition by customer_no order by created_at, order_key),
        whole_history as (
            partition by customer_no order by created_at, order_key
            rows between unbounded preceding and unbounded following
        )
),

orders as (
    -- A purchase day is a business day with orders; intervals run from one purchase day to the
    -- next, so only the first order of a day carries one.
    select
        *,
        case
            {%- for band in hour_bands %}
                when order_hour >= {{ band.from_hour }} and order_hour < {{ band.to_hour }} then {{ lit(band.label) }}
            {%- endfor %}
        end as hour_band,
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
        max(interval_days) as max_repurchase_gap_days,
        {%- for label in band_labels %}
            count(case when hour_band = {{ lit(label) }} then 1 end) as hour_band_{{ loop.index }}_orders,
        {%- endfor %}
        {%- for weekday in weekdays %}
            count(case when order_weekday = {{ weekday }} then 1 end) as weekday_{{ weekday }}_orders,
        {%- endfor %}
        count(case when hour_band is null then 1 end) as unbanded_orders
    from orders
    group by customer_no
),

habit_peaks as (
    select
        order_totals.*,
        {%- if band_labels %}
            greatest(
                {%- for label in band_labels %}
                    hour_band_{{ loop.index }}_orders{{ "," if not loop.last }}
                {%- endfor %}
            ) as peak_hour_band_orders,
        {%- else %}
            0 as peak_hour_band_orders,
        {%- endif %}
        greatest(
            {%- for weekday in weekdays %}
                weekday_{{ weekday }}_orders{{ "," if not loop.last }}
            {%- endfor %}
        ) as peak_weekday_orders
    from order_totals
),

brand_rhythm as (
    select percentile_cont(0.5) within group (order by interval_days) as brand_median_interval_days
    from orders
    where interval_days is not null
)

select
    habit_peaks.customer_no,
    habit_peaks.order_count,
    habit_peaks.total_spend,
    habit_peaks.first_order_date,
    habit_peaks.last_order_date,
    {%- for days in trailing_windows_days %}
        habit_peaks.orders_{{ days }}d,
        habit_peaks.spend_{{ days }}d,
    {%- endfor %}
    habit_peaks.gift_orders,
    habit_peaks.first_order_channel,
    habit_peaks.first_order_amount,
    habit_peaks.last_order_channel,
    percent_rank() over (order by habit_peaks.total_spend) as spend_percentile,
    habit_peaks.purchase_days,
    habit_peaks.purchase_days_730d,
    habit_peaks.avg_repurchase_interval_days,
    habit_peaks.median_repurchase_interval_days,
    habit_peaks.last_repurchase_interval_days,
    habit_peaks.max_repurchase_gap_days,
    brand_rhythm.brand_median_interval_days,
    case
        when habit_peaks.unbanded_orders > habit_peaks.peak_hour_band_orders then null
        {%- for label in band_labels %}
            when habit_peaks.hour_band_{{ loop.index }}_orders = habit_peaks.peak_hour_band_orders then {{ lit(label) }}
        {%- endfor %}
    end as preferred_hour_band,
    cast(case
        {%- for weekday in weekdays %}
            when habit_peaks.weekday_{{ weekday }}_orders = habit_peaks.peak_weekday_orders then {{ weekday }}
        {%- endfor %}
    end as bigint) as preferred_weekday
from habit_peaks
cross join brand_rhythm
