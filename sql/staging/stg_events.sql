-- One row per engagement event before the as-of day.
select
    'event:' || events._file || ':' || cast(events._line as varchar) as record_id,
    events.event_type,
    events.phone,
    events.unionid,
    events.email,
    events.member_id,
    events.topic,
    events.duration_seconds,
    events.question,
    events.answer,
    events.campaign_id,
    events.referred_phone,
    events.occurred_at,
    cast(events.occurred_at at time zone {{ timezone }} as date) as event_date
from {{ source('events') }} as events
where events.occurred_at < {{ as_of_ts }}
