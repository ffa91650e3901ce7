-- One row per contact record known before the as-of day (a person may have several).
select
    -- ids
    'contact:' || contacts._file || ':' || cast(contacts._line as varchar) as record_id,
    contacts.phone,
    contacts.unionid,
    contacts.email,
    contacts.member_id,
    -- attributes
    contacts.source_channel,
    contacts.gender,
    contacts.birthday,
    contacts.city,
    contacts.occupation,
    contacts.life_stage,
    -- consent
    contacts.opted_out,
    contacts.marketing_consent,
    -- timestamps
    contacts.signup_at,
    cast(contacts.signup_at at time zone {{ timezone }} as date) as signup_date,
    coalesce(contacts.updated_at, contacts.signup_at, contacts._loaded_at) as recorded_at
from {{ source('contacts') }} as contacts
where coalesce(contacts.signup_at, contacts._loaded_at) < {{ as_of_ts }}
