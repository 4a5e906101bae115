-- Job listings filtered by state (`JobQueue::list`): a tenant's dead jobs,
-- say, without reading its finished ones.
CREATE INDEX jobs_tenant_state ON jobs (tenant_id, state, id);
