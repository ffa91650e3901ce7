-- One row per delivered order line: a re-sent line is another row, replaced in int_customer_items.
-- order_key: the order's integer key (see stg_orders).
-- version_no: the row's integer key inside one build, in load order (ingest run, file path, line).
-- A view: int_customer_items is its only reader, and writing 15M rows per 10M orders costs more.
{{ config(materialized='view') }}
with landed_files as (
    {{ landed_files(source('order_items')) }}
)

select
    items._order_key as order_key,
    items.sku,
    items.quantity,
    items.price,
    landed_files.line_offset + items._line as version_no
from {{ source('order_items') }} as items
inner join landed_files
    on items._batch = landed_files._batch and items._file = landed_files._file
