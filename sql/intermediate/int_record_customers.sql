-- One row per record that carries at least one usable identifier: the customer it belongs to.
-- Records whose only identifiers are junk belong to nobody (reported in identity_junk_identifiers).
-- A view: each reader asks for one kind of record, and writing the keys of 18M records per 10M
-- orders costs more than joining them to the customers again.
{{ config(materialized='view') }}
with customer_keys as (
    select distinct
        customer_no,
        customer_key
    from {{ ref('int_identity') }}
)

select
    labels.record_kind,
    labels.record_no,
    labels.customer_no,
    customer_keys.customer_key
from {{ ref('int_record_labels') }} as labels
inner join customer_keys
    on labels.customer_no = customer_keys.customer_no
