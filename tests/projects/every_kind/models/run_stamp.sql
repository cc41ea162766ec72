-- What this run saw: run_started_at and invocation_id directly and through an ephemeral model.
select
    '{{ run_started_at }}' as started_direct,
    '{{ invocation_id }}' as invocation_direct,
    started_via_ephemeral,
    invocation_via_ephemeral
from {{ ref('eph_stamp') }}
