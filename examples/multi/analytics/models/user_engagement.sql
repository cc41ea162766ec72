select user_id, count(*) as sessions, sum(page_views) as page_views
from {{ ref('raw_sessions') }}
group by user_id
