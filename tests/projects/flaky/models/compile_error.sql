{% if execute %}
  {{ exceptions.raise_compiler_error("this model does not compile at run time") }}
{% endif %}
select 1 as id
