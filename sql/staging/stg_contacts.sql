-- One row per contact record known before the as-of day (a person may have several).
-- record_no: the record's integer key inside one build (loaded file, then line).
-- phone_key ... external_userid_key: the identifiers' integer keys from ingest (see stg_orders).
with landed_files as (
    {{ landed_files(source('contacts')) }}
)

select
    -- ids
    landed_files.line_offset + contacts._line as record_no,
    contacts.phone,
    contacts.unionid,
    contacts.email,
    contacts.member_id,
    contacts.external_userid,
    contacts._phone_key as phone_key,
    contacts._unionid_key as unionid_key,
    contacts._email_key as email_key,
    contacts._member_id_key as member_id_key,
    contacts._external_userid_key as external_userid_key,
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
inner join landed_files
    on contacts._batch = landed_files._batch and contacts._file = landed_files._file
where coalesce(contacts.signup_at, contacts._loaded_at) < {{ as_of_ts }}
