{#- Where the test holds a node: on DuckDB a named pipe the test writes to (read_csv blocks until it
    does), on PostgreSQL pg_sleep. Unset, nothing waits. -#}

{% macro batch_rows() %}
  {%- if target.type == 'duckdb' -%}
    read_csv('{{ env_var("ROWS_FIFO") }}', header = false, columns = {'id': 'integer'})
  {%- else -%}
    (select id from generate_series(1, 10) as id, (select pg_sleep({{ env_var('MAIN_SLEEP', '0') }})) as pause) as batch
  {%- endif -%}
{% endmacro %}

{% macro after_commit_wait() %}
  {%- if target.type == 'duckdb' and env_var('HOOK_FIFO', '') -%}
    insert into {{ target.schema }}.hook_log
    select count(*) from read_csv('{{ env_var("HOOK_FIFO") }}', header = false, columns = {'line': 'varchar'})
  {%- elif target.type == 'postgres' -%}
    insert into {{ target.schema }}.hook_log select 1 from (select pg_sleep({{ env_var('HOOK_SLEEP', '0') }})) as pause
  {%- endif -%}
{% endmacro %}
