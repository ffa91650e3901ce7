-- Customers of the previous run whose identifiers now belong to another (older) customer.
{{ config(materialized='incremental', unique_key='as_of_date', step='publish') }}
with previous_run as (
    select max(as_of_date) as as_of_date
    from {{ ref('customer_identifiers_history') }}
    where as_of_date < {{ as_of_date }}
),

previous_keys as (
    select
        history.customer_key,
        history.id_type,
        history.id_value
    from {{ ref('customer_identifiers_history') }} as history
    inner join previous_run on history.as_of_date = previous_run.as_of_date
)

select
    {{ as_of_date }} as as_of_date,
    previous_keys.customer_key as merged_key,
    current_keys.customer_key as surviving_key,
    count(*) as identifiers
from previous_keys
inner join {{ ref('customer_identifiers') }} as current_keys
    on previous_keys.id_type = current_keys.id_type and previous_keys.id_value = current_keys.id_value
where previous_keys.customer_key <> current_keys.customer_key
group by previous_keys.customer_key, current_keys.customer_key
