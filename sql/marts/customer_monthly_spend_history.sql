-- customer_monthly_spend per run date: rewritten for the run's as_of_date only after the checks pass.
{{ config(materialized='incremental', unique_key='as_of_date', step='publish', snapshot=true) }}
select * from {{ ref('customer_monthly_spend') }}
