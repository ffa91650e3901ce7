-- One row per SKU, the description loaded last (version_no: ingest run, file path, line).
with landed_files as (
    {{ landed_files(source('products')) }}
),

ranked as (
    select
        products.*,
        row_number() over (
            partition by products.sku
            order by landed_files.line_offset + products._line desc
        ) as version_rank
    from {{ source('products') }} as products
    inner join landed_files
        on products._batch = landed_files._batch and products._file = landed_files._file
)

-- category_no, subcategory_no, price_line_no: each label's integer inside one build, numbered in
-- the label's sort order, so the lines of 10M orders are summed and ranked by integers and a tie
-- between labels still goes to the one that sorts first.
select
    sku,
    product_name,
    category,
    subcategory,
    price_line,
    list_price,
    case when cycle_days > 0 then cycle_days end as cycle_days,
    case when category is not null then dense_rank() over (order by category) end as category_no,
    case when subcategory is not null then dense_rank() over (order by subcategory) end as subcategory_no,
    case when price_line is not null then dense_rank() over (order by price_line) end as price_line_no
from ranked
where version_rank = 1
