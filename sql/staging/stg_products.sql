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

select
    sku,
    product_name,
    category,
    subcategory,
    price_line,
    list_price,
    case when cycle_days > 0 then cycle_days end as cycle_days
from ranked
where version_rank = 1
