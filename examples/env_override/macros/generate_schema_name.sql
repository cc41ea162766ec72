{#- Everything a run builds lands in one schema: the `schema` var when the run
    passes one, else the target's schema (which the profile reads from env). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ var('schema', target.schema) | trim }}
{%- endmacro %}
