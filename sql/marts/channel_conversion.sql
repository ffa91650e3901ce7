-- One row per acquisition channel (加粉渠道): contacts, share who ordered, median days to first order.
select
    {{ as_of_date }} as as_of_date,
    coalesce(source_channel, '(unknown)') as source_channel,
    count(*) as contacts,
    count(case when order_count > 0 then 1 end) as ordered,
    cast(count(case when order_count > 0 then 1 end) as double) / count(*) as order_share,
    percentile_cont(0.5) within group (order by days_to_first_order) as median_days_to_first_order,
    sum(total_spend) as revenue
from {{ ref('customer_features') }}
where contact_records > 0
group by coalesce(source_channel, '(unknown)')
