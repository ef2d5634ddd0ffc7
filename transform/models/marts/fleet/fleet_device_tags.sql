-- Fleet reporting by tag: devices per workspace, tag name and value.
select
    t.workspace_id,
    t.tag_name,
    t.tag_value,
    count(distinct t.device_id) as device_count,
    count(distinct d.model) as model_count,
    count(distinct d.device_type) as device_type_count
from {{ ref('stg_flex__device_tags') }} as t
inner join {{ ref('stg_flex__devices') }} as d
    on t.workspace_id = d.workspace_id and t.device_id = d.device_id
group by t.workspace_id, t.tag_name, t.tag_value
