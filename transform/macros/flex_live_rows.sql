{#-
  Keeps deleted rows out of the models: `_sdc_deleted_at IS NULL` when the loaded table has that
  column (target-duckdb with add_metadata_columns or hard_delete: the tap's deletion markers set
  it when hard_delete is off), else `true`, so the staging models compile against either table
  shape (hard deletes leave no marked rows; older tables have no such column).
  See docs/deletions.md.
-#}
{% macro flex_live_rows(relation) -%}
  {%- if flex_has_column(relation, '_sdc_deleted_at') -%}
    _sdc_deleted_at is null
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
