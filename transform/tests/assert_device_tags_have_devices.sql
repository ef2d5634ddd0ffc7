-- Every unnested tag belongs to a staged device of the same workspace (device IDs are unique
-- only within a workspace, so a single-column relationships test would not say this).
select t.workspace_id, t.device_id
from {{ ref('stg_flex__device_tags') }} as t
left join {{ ref('stg_flex__devices') }} as d
    on t.workspace_id = d.workspace_id and t.device_id = d.device_id
where d.device_id is null
