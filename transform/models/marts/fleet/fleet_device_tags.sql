-- Fleet reporting by tag: devices per tag name and value.
select
    t.tag_name,
    t.tag_value,
    count(distinct t.device_id) as device_count,
    count(distinct d.model) as model_count,
    count(distinct d.device_type) as device_type_count
from {{ ref('stg_flex__device_tags') }} as t
inner join {{ ref('stg_flex__devices') }} as d on t.device_id = d.device_id
group by t.tag_name, t.tag_value
