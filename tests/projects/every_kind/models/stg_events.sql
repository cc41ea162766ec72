{{ config(materialized='view', event_time='event_time') }}
select id, kind, amount, event_time from {{ ref('raw_events') }}
