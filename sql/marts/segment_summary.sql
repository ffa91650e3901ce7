-- One row per model and segment: size, revenue and their shares (人群洞察), with the model's label
-- and the order to list segments in (segment_catalog, from segments.yml). `revenue` is lifetime net
-- spend; `revenue_90d` the trailing 90 days, the window of the value x frequency quadrants.
with segments as (
    select * from {{ ref('customer_segments') }}
),

catalog as (
    select * from {{ ref('segment_catalog') }}
),

features as (
    select
        customer_key,
        order_count,
        total_spend,
        spend_90d
    from {{ ref('customer_features') }}
),

per_segment as (
    select
        segments.model,
        segments.segment,
        segments.segment_label,
        count(*) as customers,
        sum(features.total_spend) as revenue,
        sum(features.spend_90d) as revenue_90d,
        sum(features.order_count) as orders
    from segments
    inner join features on segments.customer_key = features.customer_key
    group by segments.model, segments.segment, segments.segment_label
),

per_model as (
    select
        model,
        sum(customers) as model_customers,
        sum(revenue) as model_revenue,
        sum(revenue_90d) as model_revenue_90d
    from per_segment
    group by model
)

select
    {{ as_of_date }} as as_of_date,
    per_segment.model,
    per_segment.segment,
    per_segment.segment_label,
    per_segment.customers,
    cast(per_segment.customers as double) / per_model.model_customers as customer_share,
    per_segment.revenue,
    cast(per_segment.revenue as double) / nullif(per_model.model_revenue, 0) as revenue_share,
    per_segment.revenue / nullif(per_segment.orders, 0) as avg_order_value,
    cast(per_segment.orders as double) / per_segment.customers as avg_orders,
    catalog.model_label,
    catalog.model_order,
    catalog.segment_order,
    per_segment.revenue_90d,
    cast(per_segment.revenue_90d as double) / nullif(per_model.model_revenue_90d, 0) as revenue_90d_share
from per_segment
inner join per_model on per_segment.model = per_model.model
left join catalog on per_segment.model = catalog.model and per_segment.segment = catalog.segment
