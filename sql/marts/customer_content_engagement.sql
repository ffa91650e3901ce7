-- One row per customer and content topic: views and seconds spent (素材雷达).
select
    customer_key,
    {{ as_of_date }} as as_of_date,
    topic,
    count(*) as views,
    sum(coalesce(duration_seconds, 0)) as seconds,
    max(event_date) as last_viewed_date
from {{ ref('int_customer_events') }}
where event_type = 'content_view' and topic is not null
group by customer_key, topic
