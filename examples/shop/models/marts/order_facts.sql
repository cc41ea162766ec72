{{ config(materialized='incremental', unique_key='order_id') }}

select order_id, customer_id, order_date, amount
from {{ ref('orders') }}
{% if is_incremental() %}
where order_date > (select coalesce(max(order_date), date '1900-01-01') from {{ this }})
{% endif %}
