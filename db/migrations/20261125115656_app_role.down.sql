-- db/migrations/20261125115656_app_role.down.sql
-- Undo app_role: take back what cruddur_app was granted in this database. The role itself
-- stays (it belongs to the server; other databases may use it: DROP ROLE it by hand), and so
-- does the REVOKE of CREATE on schema public from PUBLIC (PostgreSQL 15+'s default anyway).

REVOKE ALL ON FUNCTION public.activity_replies(uuid, integer) FROM cruddur_app;
REVOKE ALL ON public.activity_items FROM cruddur_app;
REVOKE ALL ON public.users, public.activities FROM cruddur_app;
REVOKE ALL ON SCHEMA public FROM cruddur_app;
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM cruddur_app', current_database());
END
$$;
