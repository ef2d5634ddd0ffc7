{#-
  Whether a loaded table has a column (names compared lower-cased, as target-duckdb writes them).
  The staging models adapt to the loader's settings with it: metadata columns on or off, hard or
  soft deletes. False while dbt only parses the project.
-#}
{% macro flex_has_column(relation, column) -%}
  {%- if not execute -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
  {{ return(column | lower in names) }}
{%- endmacro %}
