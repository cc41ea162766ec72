{{ config(materialized='ephemeral') }}
select '{{ run_started_at }}' as started_via_ephemeral, '{{ invocation_id }}' as invocation_via_ephemeral
