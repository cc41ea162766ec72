{{ config(materialized='incremental', unique_key='id') }}
select id, kind, amount from {{ ref('stg_events') }}
{% if is_incremental() %}
where id > (select coalesce(max(id), 0) from {{ this }})
{% endif %}
