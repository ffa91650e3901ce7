-- One row per customer and content topic: views and seconds spent (素材雷达).
with topic_views as (
    select
        customer_no,
        topic,
        count(*) as views,
        sum(coalesce(duration_seconds, 0)) as seconds,
        max(event_date) as last_viewed_date
    from {{ ref('int_customer_events') }}
    where event_type = 'content_view' and topic is not null
    group by customer_no, topic
)

select
    customers.customer_key,
    {{ as_of_date }} as as_of_date,
    topic_views.topic,
    topic_views.views,
    topic_views.seconds,
    topic_views.last_viewed_date
from topic_views
inner join {{ ref('int_customers') }} as customers
    on topic_views.customer_no = customers.customer_no
