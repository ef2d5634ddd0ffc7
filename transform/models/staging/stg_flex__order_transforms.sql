-- Distinct order values per group-by field, as the API's /orders/transform returns them.
with source as (
    -- Live rows only: a row with _sdc_deleted_at set is deleted upstream (docs/deletions.md).
    select * from {{ source('flex', 'order_transforms') }}
    where {{ flex_live_rows(source('flex', 'order_transforms')) }}
)

select
    groupby || ':' || value as order_transform_id,
    groupby as group_by,
    value as group_value,
    item,
    {{ flex_loaded_at(source('flex', 'order_transforms')) }} as loaded_at
from source
