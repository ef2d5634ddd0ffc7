-- Partner order management: orders per workspace by partner, reseller, distributor and customer
-- (NULL = the order names none). Roll up with sum(order_count).
select
    workspace_id,
    partner_name,
    reseller_name,
    distributor_name,
    customer_name,
    count(*) as order_count,
    count(*) filter (where is_flex_partner) as flex_partner_order_count,
    count(*) filter (where is_active) as active_order_count,
    count(distinct sow_id) as sow_count,
    count(distinct billing_account_id) as billing_account_count,
    min(order_start_date) as first_order_start_date,
    max(order_end_date) as last_order_end_date
from {{ ref('stg_flex__orders') }}
group by workspace_id, partner_name, reseller_name, distributor_name, customer_name
