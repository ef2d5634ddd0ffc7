{#-
  The loader's batch time (`_sdc_batched_at`) when target-duckdb ran with
  add_metadata_columns: true (meltano.yml sets it), else NULL, so the staging models compile
  against either table shape.
-#}
{% macro flex_loaded_at(relation) -%}
  {%- set names = [] -%}
  {%- if execute -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
  {%- endif -%}
  {%- if '_sdc_batched_at' in names -%}
    _sdc_batched_at
  {%- else -%}
    cast(null as timestamp)
  {%- endif -%}
{%- endmacro %}
