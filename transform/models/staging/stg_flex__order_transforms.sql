-- Distinct order values per workspace and group-by field, as /orders/transform returns them.
with source as (
    -- Live rows only: a row with _sdc_deleted_at set is deleted upstream (docs/deletions.md).
    select * from {{ source('flex', 'order_transforms') }}
    where {{ flex_live_rows(source('flex', 'order_transforms')) }}
)

select
    workspaceid as workspace_id,
    workspaceid || ':' || groupby || ':' || value as order_transform_id,
    groupby as group_by,
    value as group_value,
    item,
    {{ flex_loaded_at(source('flex', 'order_transforms')) }} as loaded_at
from source
