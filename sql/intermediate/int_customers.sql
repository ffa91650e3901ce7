-- One row per customer: every stitched person, with what their contact records say about them.
-- customer_no: the customer as an integer, for the feature models' joins inside this build.
-- Contacts find their customer in int_record_labels: customer_key is added once per customer below.
with identity_customers as (
    select distinct
        customer_no,
        customer_key
    from {{ ref('int_identity') }}
),

contacts as (
    select
        record_customers.customer_no,
        contacts.*
    from {{ ref('stg_contacts') }} as contacts
    inner join {{ ref('int_record_labels') }} as record_customers
        on record_customers.record_kind = 'contact' and contacts.record_no = record_customers.record_no
),

first_contact as (
    select
        customer_no,
        source_channel,
        signup_date,
        row_number() over (
            partition by customer_no
            order by case when source_channel is null then 1 else 0 end, signup_at, record_no
        ) as contact_rank
    from contacts
),

latest_contact as (
    select
        customer_no,
        gender,
        birthday,
        city,
        occupation,
        life_stage,
        row_number() over (partition by customer_no order by recorded_at desc, record_no desc) as contact_rank
    from contacts
),

consent as (
    select
        customer_no,
        count(*) as contact_records,
        min(signup_date) as signup_date,
        max(case when opted_out then 1 else 0 end) = 1 as opted_out,
        case
            when max(case when marketing_consent = false then 1 else 0 end) = 1 then false
            when max(case when marketing_consent then 1 else 0 end) = 1 then true
        end as marketing_consent
    from contacts
    group by customer_no
),

membership as (
    select distinct customer_no
    from {{ ref('int_identity') }}
    where id_type = 'member_id'
)

select
    identity_customers.customer_key,
    identity_customers.customer_no,
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
    membership.customer_no is not null as is_member
from identity_customers
left join first_contact
    on identity_customers.customer_no = first_contact.customer_no and first_contact.contact_rank = 1
left join latest_contact
    on identity_customers.customer_no = latest_contact.customer_no and latest_contact.contact_rank = 1
left join consent
    on identity_customers.customer_no = consent.customer_no
left join membership
    on identity_customers.customer_no = membership.customer_no
