{# What on-run-end hooks see of each result, as packages like elementary and dbt_artifacts read it. #}
{% macro record_results(results) %}
  {% if execute %}
    create table if not exists main.results_audit (
        invocation_id varchar, unique_id varchar, status varchar, materialized varchar, has_compiled_code boolean
    );
    {% for result in results %}
      insert into main.results_audit values (
          '{{ invocation_id }}', '{{ result.node.unique_id }}', '{{ result.status }}',
          '{{ result.node.config.materialized }}', {{ 'true' if result.node.compiled_code else 'false' }}
      );
    {% endfor %}
  {% endif %}
{% endmacro %}
