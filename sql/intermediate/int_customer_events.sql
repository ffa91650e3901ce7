-- One row per engagement event that belongs to a customer, keyed by customer_no (the owner, from
-- int_record_labels). Readers that publish a customer_key join int_customers on customer_no after
-- they aggregate: carrying the 16-character key on every event doubled the time to write it
-- (bench/RESULTS.md, "Measurements behind the code").
select
    labels.customer_no,
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
