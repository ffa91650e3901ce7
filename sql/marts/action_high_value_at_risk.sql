-- Daily alert list for store managers: loyal high spenders gone quiet (segments.yml high_value_at_risk).
select
    {{ as_of_date }} as as_of_date,
    features.customer_key,
    features.total_spend,
    features.purchase_days_730d,
    features.last_order_date,
    features.recency_days,
    features.favorite_subcategory,
    features.last_order_channel,
    features.opted_out,
    features.marketing_consent
from {{ ref('customer_features') }} as features
inner join {{ ref('customer_segments') }} as segments
    on features.customer_key = segments.customer_key
where segments.model = 'high_value_at_risk' and segments.segment = 'at_risk'
