-- customer_tags per run date, written after the checks pass.
{{ config(materialized='incremental', unique_key='as_of_date', step='publish', snapshot=true) }}
select * from {{ ref('customer_tags') }}
