-- Customer keys of the previous run whose identifiers now belong to another key: a split when the
-- previous customer's identifiers now belong to more than one customer (a do-not-link rule cut its
-- links), a merge when they all moved to one other customer (it joined an older one).
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
),

current_keys as (
    select
        previous_keys.customer_key as previous_key,
        current_identifiers.customer_key
    from previous_keys
    inner join {{ ref('customer_identifiers') }} as current_identifiers
        on
            previous_keys.id_type = current_identifiers.id_type
            and previous_keys.id_value = current_identifiers.id_value
),

spread as (
    select
        previous_key,
        count(distinct customer_key) as keys_now
    from current_keys
    group by previous_key
),

moves as (
    select
        previous_key as merged_key,
        customer_key as surviving_key,
        count(*) as identifiers
    from current_keys
    where previous_key <> customer_key
    group by previous_key, customer_key
)

select
    {{ as_of_date }} as as_of_date,
    moves.merged_key,
    moves.surviving_key,
    moves.identifiers,
    case when spread.keys_now > 1 then 'split' else 'merge' end as change
from moves
inner join spread on moves.merged_key = spread.previous_key
