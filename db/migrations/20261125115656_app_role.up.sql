-- db/migrations/20261125115656_app_role.up.sql
-- app_role: cruddur_app, the role the API connects as. It reads and writes rows (SELECT,
-- INSERT, UPDATE) and nothing else: no DELETE or TRUNCATE, no DDL, it owns nothing, so a
-- statement injected through the API could not drop or alter a table.
--
-- A role belongs to the server, not to one database: it is created only when missing, and
-- without a password (it cannot log in until an operator sets one, e.g. `\password cruddur_app`
-- in bin/db-connect). A later migration that adds a table grants it to cruddur_app itself.
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'cruddur_app') THEN
    CREATE ROLE cruddur_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
EXCEPTION WHEN duplicate_object THEN
  NULL;  -- created meanwhile from another database of this server
END
$$;

-- PostgreSQL 15+ gives PUBLIC no CREATE on schema public; older servers do, and the role would
-- inherit it. Only the schema's owner can take it back: say so when this user cannot.
DO $$
BEGIN
  IF has_schema_privilege('cruddur_app', 'public', 'CREATE') THEN
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  END IF;
  IF has_schema_privilege('cruddur_app', 'public', 'CREATE') THEN
    RAISE WARNING 'cruddur_app can still CREATE in schema public: '
                  'have its owner run REVOKE CREATE ON SCHEMA public FROM PUBLIC';
  END IF;
END
$$;

DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO cruddur_app', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO cruddur_app;
GRANT SELECT, INSERT, UPDATE ON public.users, public.activities TO cruddur_app;
GRANT SELECT ON public.activity_items TO cruddur_app;
GRANT EXECUTE ON FUNCTION public.activity_replies(uuid, integer) TO cruddur_app;
