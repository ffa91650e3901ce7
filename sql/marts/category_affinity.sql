-- One row per ordered pair of categories (and of subcategories) bought by the same customers within
-- affinity.window_days before the as-of date: how often buyers of one also bought the other.
-- customers: buyers of anything of that level in the window; support = both / customers;
-- confidence = both / buyers of category; lift = confidence / (buyers of related / customers).
with buyers as (
    select distinct
        customer_key,
        'category' as level,
        category as name
    from {{ ref('customer_purchased_items') }}
    where category is not null and last_bought_date >= {{ date_before(affinity_window_days) }}
    union all
    select distinct
        customer_key,
        'subcategory' as level,
        subcategory as name
    from {{ ref('customer_purchased_items') }}
    where subcategory is not null and last_bought_date >= {{ date_before(affinity_window_days) }}
),

level_customers as (
    select
        level,
        count(distinct customer_key) as customers
    from buyers
    group by level
),

name_buyers as (
    select
        level,
        name,
        count(*) as buyers
    from buyers
    group by level, name
),

pairs as (
    select
        antecedent.level,
        antecedent.name as category,
        consequent.name as related_category,
        count(*) as buyers_of_both
    from buyers as antecedent
    inner join buyers as consequent
        on
            antecedent.customer_key = consequent.customer_key
            and antecedent.level = consequent.level
            and antecedent.name <> consequent.name
    group by antecedent.level, antecedent.name, consequent.name
)

select
    {{ as_of_date }} as as_of_date,
    pairs.level,
    pairs.category,
    pairs.related_category,
    of_category.buyers as buyers_of_category,
    of_related.buyers as buyers_of_related,
    pairs.buyers_of_both,
    level_customers.customers,
    cast(pairs.buyers_of_both as double) / level_customers.customers as support,
    cast(pairs.buyers_of_both as double) / of_category.buyers as confidence,
    (cast(pairs.buyers_of_both as double) / of_category.buyers)
    / (cast(of_related.buyers as double) / level_customers.customers) as lift
from pairs
inner join level_customers on pairs.level = level_customers.level
inner join name_buyers as of_category
    on pairs.level = of_category.level and pairs.category = of_category.name
inner join name_buyers as of_related
    on pairs.level = of_related.level and pairs.related_category = of_related.name
