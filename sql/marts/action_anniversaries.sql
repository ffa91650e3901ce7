-- Daily action list: customers whose first order was 100 days or one year before the run date.
select
    {{ as_of_date }} as as_of_date,
    customer_key,
    first_order_date,
    case when first_order_date = {{ date_before(100) }} then '100 days' else '1 year' end as anniversary,
    order_count,
    total_spend,
    opted_out,
    marketing_consent
from {{ ref('customer_features') }}
where first_order_date in ({{ date_before(100) }}, {{ one_year_before }})
