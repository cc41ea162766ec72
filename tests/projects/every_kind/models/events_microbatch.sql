{{ config(
    materialized='incremental',
    incremental_strategy='microbatch',
    event_time='event_time',
    batch_size='year',
    begin='2025-01-01',
) }}
select id, kind, amount, event_time from {{ ref('stg_events') }}
