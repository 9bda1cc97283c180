-- Widgets are deleted softly: their conversations keep pointing at them, the visitor side stops
-- serving them at once.
ALTER TABLE widgets ADD COLUMN deleted_at timestamptz;
CREATE INDEX widgets_tenant_live ON widgets (tenant_id, created_at) WHERE deleted_at IS NULL;
