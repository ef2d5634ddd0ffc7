-- One row per workspace and company that appears on an order as partner, reseller or distributor, with its
-- orders in each role. in_transform_partners says whether /orders/transform lists it under
-- partnerName (the API documents that list as the union of reseller and distributor names, so
-- a company seen only as partnerName is not in it).
with orders as (
    select * from {{ ref('stg_flex__orders') }}
),

roles as (
    select workspace_id, partner_name as company_name, 'partner' as role, order_id, customer_name, is_flex_partner
    from orders where partner_name is not null
    union all
    select workspace_id, reseller_name, 'reseller', order_id, customer_name, is_flex_partner
    from orders where reseller_name is not null
    union all
    select workspace_id, distributor_name, 'distributor', order_id, customer_name, is_flex_partner
    from orders where distributor_name is not null
),

transform_partners as (
    select distinct workspace_id, group_value as company_name
    from {{ ref('stg_flex__order_transforms') }}
    where group_by = 'partnerName'
)

select
    r.workspace_id,
    r.company_name as partner_name,
    count(distinct r.order_id) as order_count,
    count(*) filter (where r.role = 'partner') as orders_as_partner,
    count(*) filter (where r.role = 'reseller') as orders_as_reseller,
    count(*) filter (where r.role = 'distributor') as orders_as_distributor,
    count(*) filter (where r.role = 'partner' and r.is_flex_partner) as flex_partner_orders,
    count(distinct r.customer_name) as customer_count,
    bool_or(t.company_name is not null) as in_transform_partners
from roles as r
left join transform_partners as t
    on r.workspace_id = t.workspace_id and r.company_name = t.company_name
group by r.workspace_id, r.company_name
