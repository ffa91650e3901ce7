-- One row per engagement event that belongs to a customer.
select
    record_customers.customer_key,
    record_customers.customer_no,
    events.event_type,
    events.topic,
    events.duration_seconds,
    events.question,
    events.answer,
    events.campaign_id,
    events.referred_phone,
    events.occurred_at,
    events.event_date
from {{ ref('stg_events') }} as events
inner join {{ ref('int_record_customers') }} as record_customers
    on record_customers.record_kind = 'event' and events.record_no = record_customers.record_no
