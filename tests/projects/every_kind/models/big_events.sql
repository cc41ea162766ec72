select id, amount from {{ ref('stg_events') }} where amount >= 20
