-- segment_summary per run date, written after the checks pass.
{{ config(materialized='incremental', unique_key='as_of_date', step='publish') }}
select * from {{ ref('segment_summary') }}
