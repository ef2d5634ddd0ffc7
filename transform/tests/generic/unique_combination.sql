{#-
  No row shares the same values of all `columns`; NULLs count as equal values (GROUP BY groups
  them), so a mart whose grain has nullable dimensions (no partner, no billing tier) is still
  checked. Written here because dbt packages (dbt_utils) need network access at `dbt deps`.
-#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
