-- Daily action list: consumables running out within the next N days (settings: actions).
select
    {{ as_of_date }} as as_of_date,
    customer_key,
    replenishment_due_date,
    date_diff('day', {{ as_of_date }}, replenishment_due_date) as due_in_days,
    favorite_subcategory,
    last_order_date,
    preferred_hour_band,
    opted_out,
    marketing_consent
from {{ ref('customer_features') }}
where replenishment_due_date >= {{ as_of_date }} and replenishment_due_date <= {{ date_after(replenishment_within_days) }}
