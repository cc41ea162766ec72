select campaign, round(sum(spend_cents) / 100.0 / sum(signups), 2) as cost_per_signup
from {{ ref('raw_campaigns') }}
group by campaign
