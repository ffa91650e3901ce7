-- One row per engagement event that belongs to a customer.
-- The owner comes from int_record_labels and the key from int_customers (one row per customer):
-- int_record_customers would find the key by a distinct over every identifier of int_identity.
select
    customers.customer_key,
    customers.customer_no,
    events.event_type,
    events.topic,
    events.duration_seconds,
    events.question,
    events.answer,
    events.campaign_id,
    events.occurred_at,
    events.event_date
from {{ ref('stg_events') }} as events
inner join {{ ref('int_record_labels') }} as labels
    on labels.record_kind = 'event' and events.record_no = labels.record_no
inner join {{ ref('int_customers') }} as customers
    on labels.customer_no = customers.customer_no
