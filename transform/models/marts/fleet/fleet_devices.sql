-- Fleet reporting: devices per workspace by model, device type, make and billing tier (NULL tier = none).
-- Roll up with sum(device_count) for any coarser grain (e.g. per model).
select
    workspace_id,
    model,
    device_type,
    make,
    billing_tier,
    count(*) as device_count,
    count(device_name) as named_device_count,
    count(*) filter (where tag_count > 0) as tagged_device_count,
    count(*) filter (where billing_account_name is null) as devices_without_billing_account,
    count(distinct billing_account_name) as billing_account_count,
    min(created_at) as first_created_at,
    max(updated_at) as last_updated_at
from {{ ref('stg_flex__devices') }}
group by workspace_id, model, device_type, make, billing_tier
