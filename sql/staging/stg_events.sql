-- One row per engagement event before the as-of day.
-- record_no: the record's integer key inside one build (loaded file, then line).
-- phone_key ... external_userid_key: the identifiers' integer keys from ingest (see stg_orders).
-- A view: a projection of the raw table is cheaper to read again than to write.
{{ config(materialized='view') }}
with landed_files as (
    {{ landed_files(source('events')) }}
)

select
    landed_files.line_offset + events._line as record_no,
    events.event_type,
    events.phone,
    events.unionid,
    events.email,
    events.member_id,
    events.external_userid,
    events._phone_key as phone_key,
    events._unionid_key as unionid_key,
    events._email_key as email_key,
    events._member_id_key as member_id_key,
    events._external_userid_key as external_userid_key,
    events.topic,
    events.duration_seconds,
    events.question,
    events.answer,
    events.campaign_id,
    events.referred_phone,
    events.occurred_at,
    cast(events.occurred_at at time zone {{ timezone }} as date) as event_date
from {{ source('events') }} as events
inner join landed_files
    on events._batch = landed_files._batch and events._file = landed_files._file
where events.occurred_at < {{ as_of_ts }}
