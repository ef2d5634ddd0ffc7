-- Every value on a loaded order appears in /orders/transform for its group-by field
-- (partnerName there is the union of resellerName and distributorName). Checks only the fields
-- that were extracted (order_transform_group_by may select a subset). Both streams are loaded
-- in the same run, and merged transforms keep old values, so a miss means lost data.
with orders as (
    select * from {{ ref('stg_flex__orders') }}
),

transforms as (
    select workspace_id, group_by, group_value from {{ ref('stg_flex__order_transforms') }}
),

order_values as (
    select workspace_id, 'sowId' as group_by, sow_id as group_value from orders
    union
    select workspace_id, 'customerName', customer_name from orders
    union
    select workspace_id, 'billingAccountName', billing_account_name from orders
    union
    select workspace_id, 'billingAccountId', billing_account_id from orders
    union
    select workspace_id, 'partnerName', reseller_name from orders where reseller_name is not null
    union
    select workspace_id, 'partnerName', distributor_name from orders where distributor_name is not null
)

select v.workspace_id, v.group_by, v.group_value
from order_values as v
where v.group_by in (select distinct group_by from transforms)
    and not exists (
        select 1 from transforms as t
        where t.workspace_id = v.workspace_id
            and t.group_by = v.group_by and t.group_value = v.group_value
    )
