-- Customers moving from segment X (previous run date) to segment Y (this run), per model.
{{ config(materialized='incremental', unique_key='as_of_date', step='publish') }}
with previous_run as (
    select max(as_of_date) as as_of_date
    from {{ ref('customer_segments_history') }}
    where as_of_date < {{ as_of_date }}
),

previous_segments as (
    select
        history.customer_key,
        history.model,
        history.segment,
        history.as_of_date
    from {{ ref('customer_segments_history') }} as history
    inner join previous_run on history.as_of_date = previous_run.as_of_date
),

current_segments as (
    select
        customer_key,
        model,
        segment
    from {{ ref('customer_segments') }}
)

select
    {{ as_of_date }} as as_of_date,
    max(previous_segments.as_of_date) as previous_as_of_date,
    current_segments.model,
    coalesce(previous_segments.segment, '(new customer)') as from_segment,
    current_segments.segment as to_segment,
    count(*) as customers
from current_segments
left join previous_segments
    on
        current_segments.customer_key = previous_segments.customer_key
        and current_segments.model = previous_segments.model
where
    exists (
        select 1 from previous_run
        where previous_run.as_of_date is not null
    )
group by current_segments.model, coalesce(previous_segments.segment, '(new customer)'), current_segments.segment
