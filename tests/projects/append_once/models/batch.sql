{#- An append-only incremental model with an after-commit post-hook: retried after its insert
    committed, it must not append again. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook=[{"sql": "create table if not exists {{ target.schema }}.hook_log (n integer)", "transaction": false}],
    post_hook=[{"sql": "{{ after_commit_wait() }}", "transaction": false}],
) }}

{% if is_incremental() %}
select id, '{{ invocation_id }}' as loaded_by from {{ batch_rows() }}
{% else %}
select 0 as id, 'created' as loaded_by where false
{% endif %}
