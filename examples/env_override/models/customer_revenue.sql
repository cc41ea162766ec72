-- Revenue per customer in the run's currency (the `fx_rate` var), labelled with
-- the run's env label and the target it was built for.
select
    customer,
    round(sum(amount_cents) * {{ var('fx_rate', 1) }} / 100.0, 2) as revenue,
    count(*) as orders,
    {{ run_label() }} as run_label,
    '{{ target.name }}' as target_name
from {{ ref('stg_orders') }}
group by customer
