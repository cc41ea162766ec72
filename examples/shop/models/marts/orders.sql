with payments as (
    select order_id, sum(amount) as amount
    from {{ ref('stg_payments') }}
    group by order_id
)

select
    o.order_id,
    o.customer_id,
    c.first_name || ' ' || c.last_name as customer_name,
    o.order_date,
    o.status,
    coalesce(p.amount, 0) as amount
from {{ ref('stg_orders') }} as o
join {{ ref('stg_customers') }} as c using (customer_id)
left join payments as p using (order_id)
where coalesce(p.amount, 0) >= {{ var('min_order_amount') }}
