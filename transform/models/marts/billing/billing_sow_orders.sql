-- Orders per workspace, billing account and SOW, with the account's devices beside them.
-- Devices cannot be attributed to a SOW (the API gives them only billingAccountName), so
-- account_device_count is the whole account's device count joined on the account NAME and
-- repeated on each of its SOWs: never sum it across SOWs (use billing_account_reconciliation).
with orders as (
    select * from {{ ref('stg_flex__orders') }}
),

account_devices as (
    select workspace_id, billing_account_name, count(*) as device_count
    from {{ ref('stg_flex__devices') }}
    where billing_account_name is not null
    group by workspace_id, billing_account_name
),

sow_accounts as (
    select workspace_id, sow_id, count(distinct billing_account_id) as account_count
    from orders
    group by workspace_id, sow_id
),

sows as (
    select
        workspace_id,
        billing_account_id,
        billing_account_name,
        sow_id,
        count(*) as order_count,
        count(*) filter (where is_active) as active_order_count,
        count(*) filter (where is_flex_partner) as flex_partner_order_count,
        count(distinct customer_name) as customer_count,
        string_agg(distinct customer_name, '; ' order by customer_name) as customer_names,
        min(order_start_date) as first_order_start_date,
        max(order_end_date) as last_order_end_date,
        max(updated_at) as last_updated_at
    from orders
    group by workspace_id, billing_account_id, billing_account_name, sow_id
)

select
    s.workspace_id,
    s.billing_account_id,
    s.billing_account_name,
    s.sow_id,
    s.order_count,
    s.active_order_count,
    s.flex_partner_order_count,
    s.customer_count,
    s.customer_names,
    s.first_order_start_date,
    s.last_order_end_date,
    s.last_updated_at,
    a.account_count > 1 as is_sow_shared_across_accounts,
    coalesce(d.device_count, 0) as account_device_count
from sows as s
inner join sow_accounts as a on s.workspace_id = a.workspace_id and s.sow_id = a.sow_id
left join account_devices as d
    on s.workspace_id = d.workspace_id and s.billing_account_name = d.billing_account_name
