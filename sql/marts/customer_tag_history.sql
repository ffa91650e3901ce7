-- When each customer gained and lost each tag: this run compared with the previous run date.
{{ config(materialized='incremental', unique_key='as_of_date', step='publish') }}
with previous_run as (
    select max(as_of_date) as as_of_date
    from {{ ref('customer_tags_history') }}
    where as_of_date < {{ as_of_date }}
),

previous_tags as (
    select
        history.customer_key,
        history.tag_category,
        history.tag_group,
        history.tag,
        history.source
    from {{ ref('customer_tags_history') }} as history
    inner join previous_run on history.as_of_date = previous_run.as_of_date
),

current_tags as (
    select
        customer_key,
        tag_category,
        tag_group,
        tag,
        source
    from {{ ref('customer_tags') }}
),

gained as (
    select current_tags.*
    from current_tags
    left join previous_tags
        on
            current_tags.customer_key = previous_tags.customer_key
            and current_tags.tag_group = previous_tags.tag_group
            and current_tags.tag = previous_tags.tag
    where previous_tags.customer_key is null
),

lost as (
    select previous_tags.*
    from previous_tags
    left join current_tags
        on
            previous_tags.customer_key = current_tags.customer_key
            and previous_tags.tag_group = current_tags.tag_group
            and previous_tags.tag = current_tags.tag
    where current_tags.customer_key is null
)

select
    {{ as_of_date }} as as_of_date,
    customer_key,
    tag_category,
    tag_group,
    tag,
    source,
    'gained' as change
from gained
union all
select
    {{ as_of_date }} as as_of_date,
    customer_key,
    tag_category,
    tag_group,
    tag,
    source,
    'lost' as change
from lost
