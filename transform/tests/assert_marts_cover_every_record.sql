-- Each mart accounts for every staged record exactly once (no join fan-out or loss).
with expected as (
    select
        (select count(*) from {{ ref('stg_flex__orders') }}) as orders,
        (select count(*) from {{ ref('stg_flex__devices') }}) as devices,
        (select count(*) from {{ ref('stg_flex__device_tags') }}) as device_tags
),

got as (
    select 'fleet_devices.device_count' as check_name,
        (select sum(device_count) from {{ ref('fleet_devices') }}) as total,
        (select devices from expected) as expected
    union all
    select 'billing_account_reconciliation.device_count',
        (select sum(device_count) from {{ ref('billing_account_reconciliation') }}),
        (select devices from expected)
    union all
    select 'billing_account_reconciliation.order_count',
        (select sum(order_count) from {{ ref('billing_account_reconciliation') }}),
        (select orders from expected)
    union all
    select 'billing_sow_orders.order_count',
        (select sum(order_count) from {{ ref('billing_sow_orders') }}),
        (select orders from expected)
    union all
    select 'partner_orders.order_count',
        (select sum(order_count) from {{ ref('partner_orders') }}),
        (select orders from expected)
    union all
    select 'fleet_device_tags.device_count',
        (select sum(device_count) from {{ ref('fleet_device_tags') }}),
        (select count(*) from (
            select distinct workspace_id, device_id, tag_name, tag_value
            from {{ ref('stg_flex__device_tags') }}
        ))
    union all
    select 'devices.tag_count',
        (select sum(tag_count) from {{ ref('stg_flex__devices') }}),
        (select device_tags from expected)
)

select * from got where coalesce(total, 0) <> coalesce(expected, 0)
