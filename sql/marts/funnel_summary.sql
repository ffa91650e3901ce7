-- One row per AARRR stage: customers at the stage, customers who reached it (this stage or a
-- later one) and the conversion from the previous stage.
with stages as (
    {%- for stage in funnel_stages %}
        select
            {{ loop.index }} as stage_order,
            {{ lit(stage) }} as stage
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

at_stage as (
    select
        segment as stage,
        count(*) as customers
    from {{ ref('customer_segments') }}
    where model = 'funnel'
    group by segment
),

counted as (
    select
        stages.stage_order,
        stages.stage,
        coalesce(at_stage.customers, 0) as customers
    from stages
    left join at_stage on stages.stage = at_stage.stage
),

reached as (
    select
        stage_order,
        stage,
        customers,
        sum(customers) over (order by stage_order desc rows between unbounded preceding and current row) as reached
    from counted
)

select
    {{ as_of_date }} as as_of_date,
    stage_order,
    stage,
    customers,
    reached,
    cast(reached as double) / nullif(lag(reached) over (order by stage_order), 0) as conversion_from_previous
from reached
