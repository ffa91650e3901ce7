-- identity_junk_identifiers per run date: what `segflow whois --as-of` shows as ignored then.
{{ config(materialized='incremental', unique_key='as_of_date', step='publish', snapshot=true) }}
select * from {{ ref('identity_junk_identifiers') }}
