{# A label for the rows a run writes, read from the environment at compile time. #}
{% macro run_label() -%}
    '{{ env_var("DBTT_RUN_LABEL", "unlabelled") }}'
{%- endmacro %}
