-- What each tenant may reach on the shared FreeSWITCH (api/src/grants.rs), as JSON. A tenant
-- with no grants reaches nothing: the platform admin grants endpoints, gateways, caller ids
-- and dialplan destinations with PUT /v1/tenants/{id}/grants.
ALTER TABLE tenants ADD COLUMN grants TEXT NOT NULL DEFAULT '{}';
