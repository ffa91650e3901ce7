-- One row per customer: every stitched person, with what their contact records say about them.
with customer_keys as (
    select distinct customer_key from {{ ref('int_identity') }}
),

contacts as (
    select
        record_customers.customer_key,
        contacts.*
    from {{ ref('stg_contacts') }} as contacts
    inner join {{ ref('int_record_customers') }} as record_customers
        on record_customers.record_kind = 'contact' and contacts.record_no = record_customers.record_no
),

first_contact as (
    select
        customer_key,
        source_channel,
        signup_date,
        row_number() over (
            partition by customer_key
            order by case when source_channel is null then 1 else 0 end, signup_at, record_no
        ) as contact_rank
    from contacts
),

latest_contact as (
    select
        customer_key,
        gender,
        birthday,
        city,
        occupation,
        life_stage,
        row_number() over (partition by customer_key order by recorded_at desc, record_no desc) as contact_rank
    from contacts
),

consent as (
    select
        customer_key,
        count(*) as contact_records,
        min(signup_date) as signup_date,
        max(case when opted_out then 1 else 0 end) = 1 as opted_out,
        case
            when max(case when marketing_consent = false then 1 else 0 end) = 1 then false
            when max(case when marketing_consent then 1 else 0 end) = 1 then true
        end as marketing_consent
    from contacts
    group by customer_key
),

membership as (
    select distinct customer_key
    from {{ ref('int_identity') }}
    where id_type = 'member_id'
)

select
    customer_keys.customer_key,
    coalesce(consent.contact_records, 0) as contact_records,
    first_contact.source_channel,
    consent.signup_date,
    latest_contact.gender,
    latest_contact.birthday,
    latest_contact.city,
    latest_contact.occupation,
    latest_contact.life_stage,
    coalesce(consent.opted_out, false) as opted_out,
    consent.marketing_consent,
    membership.customer_key is not null as is_member
from customer_keys
left join first_contact
    on customer_keys.customer_key = first_contact.customer_key and first_contact.contact_rank = 1
left join latest_contact
    on customer_keys.customer_key = latest_contact.customer_key and latest_contact.contact_rank = 1
left join consent
    on customer_keys.customer_key = consent.customer_key
left join membership
    on customer_keys.customer_key = membership.customer_key
