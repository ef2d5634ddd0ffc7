-- One row per Flex order and workspace, renamed to snake_case. Timestamps are naive UTC (as
-- loaded). workspace_id is the tenant for an MSP's syncs (tenant_workspace_ids); an order ID is
-- unique only within its workspace.
with source as (
    -- Live rows only: a row with _sdc_deleted_at set is deleted upstream (docs/deletions.md).
    select * from {{ source('flex', 'orders') }}
    where {{ flex_live_rows(source('flex', 'orders')) }}
)

select
    workspaceid as workspace_id,
    id as order_id,
    type as resource_type,
    cast(generation as bigint) as generation,
    createdat as created_at,
    updatedat as updated_at,
    billingaccountid as billing_account_id,
    billingaccountname as billing_account_name,
    sowid as sow_id,
    orderstartdate as order_start_date,
    orderenddate as order_end_date,
    customername as customer_name,
    resellername as reseller_name,
    distributorname as distributor_name,
    partnername as partner_name,
    isflexpartner as is_flex_partner,
    -- Active at transform time (UTC): start <= now < end.
    coalesce(
        orderstartdate <= (current_timestamp at time zone 'UTC')
        and (current_timestamp at time zone 'UTC') < orderenddate,
        false
    ) as is_active,
    {{ flex_loaded_at(source('flex', 'orders')) }} as loaded_at
from source
