-- One row per manual tag action (add or remove) made by sales staff before the as-of day.
-- record_no: the record's integer key inside one build (loaded file, then line).
-- phone_key ... external_userid_key: the identifiers' integer keys from ingest (see stg_orders).
with landed_files as (
    {{ landed_files(source('manual_tags')) }}
)

select
    landed_files.line_offset + manual._line as record_no,
    manual.phone,
    manual.unionid,
    manual.email,
    manual.member_id,
    manual.external_userid,
    manual._phone_key as phone_key,
    manual._unionid_key as unionid_key,
    manual._email_key as email_key,
    manual._member_id_key as member_id_key,
    manual._external_userid_key as external_userid_key,
    manual.tag_group,
    manual.tag,
    coalesce(manual.action, 'add') as action,
    manual.operator,
    manual.tagged_at,
    manual._line as line_in_file
from {{ source('manual_tags') }} as manual
inner join landed_files
    on manual._batch = landed_files._batch and manual._file = landed_files._file
where manual.tagged_at < {{ as_of_ts }}
