-- Daily action list: birthdays in the seven days starting on the run date.
select
    {{ as_of_date }} as as_of_date,
    customer_key,
    birthday,
    age,
    order_count,
    favorite_subcategory,
    opted_out,
    marketing_consent
from {{ ref('customer_features') }}
where
    birthday is not null
    and (
        {%- for month, day in birthday_window %}
            (extract(month from birthday) = {{ month }} and extract(day from birthday) = {{ day }})
            {%- if not loop.last %} or{% endif %}
        {%- endfor %}
    )
