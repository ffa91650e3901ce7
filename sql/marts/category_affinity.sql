-- One row per ordered pair of categories (and of subcategories) bought by the same customers within
-- affinity.window_days before the as-of date: how often buyers of one also bought the other.
-- customers: buyers of anything of that level in the window; support = both / customers;
-- confidence = both / buyers of category; lift = confidence / (buyers of related / customers).
-- Counted on the categories' numbers (stg_products) and customer_no, named at the end: integers
-- make the distinct buyers and the self-join cheaper than the published names and keys.
with lines as (
    select
        customer_no,
        category_no,
        subcategory_no
    from {{ ref('int_customer_items') }}
    where order_date >= {{ date_before(affinity_window_days) }}
),

buyers as (
    select distinct
        customer_no,
        'category' as level,
        category_no as name_no
    from lines
    where category_no is not null
    union all
    select distinct
        customer_no,
        'subcategory' as level,
        subcategory_no as name_no
    from lines
    where subcategory_no is not null
),

names as (
    select distinct
        'category' as level,
        category_no as name_no,
        category as name
    from {{ ref('stg_products') }}
    where category_no is not null
    union all
    select distinct
        'subcategory' as level,
        subcategory_no as name_no,
        subcategory as name
    from {{ ref('stg_products') }}
    where subcategory_no is not null
),

level_customers as (
    select
        level,
        count(distinct customer_no) as customers
    from buyers
    group by level
),

-- The level's customers ride along with each name's buyers: read once, where a join of the pairs to
-- level_customers let PostgreSQL's planner (expecting one pair) recount them for every pair.
name_buyers as (
    select
        buyers.level,
        buyers.name_no,
        count(*) as buyers,
        max(level_customers.customers) as customers
    from buyers
    inner join level_customers on buyers.level = level_customers.level
    group by buyers.level, buyers.name_no
),

pairs as (
    select
        antecedent.level,
        antecedent.name_no as category_no,
        consequent.name_no as related_no,
        count(*) as buyers_of_both
    from buyers as antecedent
    inner join buyers as consequent
        on
            antecedent.customer_no = consequent.customer_no
            and antecedent.level = consequent.level
            and antecedent.name_no <> consequent.name_no
    group by antecedent.level, antecedent.name_no, consequent.name_no
)

select
    {{ as_of_date }} as as_of_date,
    pairs.level,
    category_names.name as category,
    related_names.name as related_category,
    of_category.buyers as buyers_of_category,
    of_related.buyers as buyers_of_related,
    pairs.buyers_of_both,
    of_category.customers,
    cast(pairs.buyers_of_both as double) / of_category.customers as support,
    cast(pairs.buyers_of_both as double) / of_category.buyers as confidence,
    (cast(pairs.buyers_of_both as double) / of_category.buyers)
    / (cast(of_related.buyers as double) / of_category.customers) as lift
from pairs
inner join name_buyers as of_category
    on pairs.level = of_category.level and pairs.category_no = of_category.name_no
inner join name_buyers as of_related
    on pairs.level = of_related.level and pairs.related_no = of_related.name_no
inner join names as category_names
    on pairs.level = category_names.level and pairs.category_no = category_names.name_no
inner join names as related_names
    on pairs.level = related_names.level and pairs.related_no = related_names.name_no
