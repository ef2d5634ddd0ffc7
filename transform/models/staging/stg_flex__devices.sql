-- One row per Flex device and workspace (the key is workspace_id, device_id), renamed to snake_case; tags stay JSON here (see stg_flex__device_tags).
with source as (
    -- Live rows only: a row with _sdc_deleted_at set is deleted upstream (docs/deletions.md).
    select * from {{ source('flex', 'devices') }}
    where {{ flex_live_rows(source('flex', 'devices')) }}
)

select
    workspaceid as workspace_id,
    id as device_id,
    type as resource_type,
    cast(generation as bigint) as generation,
    createdat as created_at,
    updatedat as updated_at,
    resourceid as resource_id,
    macaddress as mac_address,
    serialnumber as serial_number,
    partnumber as part_number,
    name as device_name,
    devicetype as device_type,
    model,
    make,
    billingaccountname as billing_account_name,
    billingtier as billing_tier,
    coalesce(cast(json_array_length(tags) as integer), 0) as tag_count,
    tags,
    {{ flex_loaded_at(source('flex', 'devices')) }} as loaded_at
from source
