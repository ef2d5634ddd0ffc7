-- One row per device and tag: the devices' JSON `tags` arrays unnested. tag_position (1-based)
-- keeps the API's order and makes the key unique even if a device repeats a tag name.
with devices as (
    select
        workspaceid as workspace_id,
        id as device_id,
        from_json(tags, '[{"name": "VARCHAR", "value": "VARCHAR"}]') as tag_list
    from {{ source('flex', 'devices') }}
    where tags is not null
        and {{ flex_live_rows(source('flex', 'devices')) }}
),

exploded as (
    select
        workspace_id,
        device_id,
        unnest(tag_list) as tag,
        generate_subscripts(tag_list, 1) as tag_position
    from devices
)

select
    workspace_id || ':' || device_id || '#' || cast(tag_position as varchar) as device_tag_id,
    workspace_id,
    device_id,
    cast(tag_position as integer) as tag_position,
    tag.name as tag_name,
    tag.value as tag_value
from exploded
