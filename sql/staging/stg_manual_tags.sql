-- One row per manual tag action (add or remove) made by sales staff before the as-of day.
select
    'manual:' || manual._file || ':' || cast(manual._line as varchar) as record_id,
    manual.phone,
    manual.unionid,
    manual.email,
    manual.member_id,
    manual.tag_group,
    manual.tag,
    coalesce(manual.action, 'add') as action,
    manual.operator,
    manual.tagged_at,
    manual._line as line_in_file
from {{ source('manual_tags') }} as manual
where manual.tagged_at < {{ as_of_ts }}
