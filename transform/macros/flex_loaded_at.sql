{#-
  The loader's batch time (`_sdc_batched_at`) when target-duckdb ran with
  add_metadata_columns: true (meltano.yml sets it), else NULL, so the staging models compile
  against either table shape.
-#}
{% macro flex_loaded_at(relation) -%}
  {%- if flex_has_column(relation, '_sdc_batched_at') -%}
    _sdc_batched_at
  {%- else -%}
    cast(null as timestamp)
  {%- endif -%}
{%- endmacro %}
