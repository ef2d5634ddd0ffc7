-- Billing reconciliation per workspace and billing account: orders (with their SOWs) beside devices.
-- Devices carry only billingAccountName (no billing account ID, no SOW), so orders and devices
-- are joined on the account NAME; a renamed or misspelt account shows up as one
-- 'orders_only' and one 'devices_only' row rather than a match. Devices with no account name
-- form one row with a NULL name ('devices_without_account').
with orders as (
    select * from {{ ref('stg_flex__orders') }}
),

devices as (
    select * from {{ ref('stg_flex__devices') }}
),

order_accounts as (
    select
        workspace_id,
        billing_account_name,
        count(distinct billing_account_id) as billing_account_id_count,
        string_agg(distinct billing_account_id, ', ' order by billing_account_id)
            as billing_account_ids,
        count(*) as order_count,
        count(*) filter (where is_active) as active_order_count,
        count(distinct sow_id) as sow_count,
        count(distinct customer_name) as customer_count,
        min(order_start_date) as first_order_start_date,
        max(order_end_date) as last_order_end_date
    from orders
    group by workspace_id, billing_account_name
),

device_accounts as (
    select
        workspace_id,
        billing_account_name,
        count(*) as device_count,
        count(distinct model) as device_model_count,
        count(distinct billing_tier) as billing_tier_count
    from devices
    group by workspace_id, billing_account_name
)

select
    coalesce(o.workspace_id, d.workspace_id) as workspace_id,
    coalesce(o.billing_account_name, d.billing_account_name) as billing_account_name,
    case
        when o.billing_account_name is not null and d.billing_account_name is not null
            then 'matched'
        when o.billing_account_name is not null then 'orders_only'
        when d.billing_account_name is not null then 'devices_only'
        else 'devices_without_account'
    end as reconciliation_status,
    coalesce(o.billing_account_id_count, 0) as billing_account_id_count,
    o.billing_account_ids,
    coalesce(o.order_count, 0) as order_count,
    coalesce(o.active_order_count, 0) as active_order_count,
    coalesce(o.sow_count, 0) as sow_count,
    coalesce(o.customer_count, 0) as customer_count,
    o.first_order_start_date,
    o.last_order_end_date,
    coalesce(d.device_count, 0) as device_count,
    coalesce(d.device_model_count, 0) as device_model_count,
    coalesce(d.billing_tier_count, 0) as billing_tier_count
from order_accounts as o
full outer join device_accounts as d
    on o.workspace_id = d.workspace_id
    and o.billing_account_name = d.billing_account_name
