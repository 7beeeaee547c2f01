-- db/migrations/20261204055925_purge_expired_activities.down.sql
-- Undo purge_expired_activities: expired activities stay. The role stays (it belongs to the
-- server; other databases may use it: DROP ROLE it by hand), with nothing granted here.

DROP PROCEDURE public.purge_expired_activities(interval, integer, bigint, bigint, integer);
DROP FUNCTION public.purge_expired_activities_batch(timestamptz, integer);
REVOKE ALL ON SCHEMA public FROM cruddur_purge;
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM cruddur_purge', current_database());
END
$$;
