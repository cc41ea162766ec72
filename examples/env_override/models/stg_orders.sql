{{ config(materialized='view') }}

-- The region a run reports on comes from its environment.
select id, customer, amount_cents
from {{ ref('raw_orders') }}
where region = '{{ env_var("DBTT_REGION", "eu") }}'
