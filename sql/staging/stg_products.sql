-- One row per SKU, the description loaded last (ingest run, file path, line).
with ranked as (
    select
        products.*,
        row_number() over (
            partition by products.sku
            order by products._loaded_at desc, products._file desc, products._line desc
        ) as version_rank
    from {{ source('products') }} as products
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
