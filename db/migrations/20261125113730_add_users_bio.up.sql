-- db/migrations/20261125113730_add_users_bio.up.sql
-- add_users_bio: a free-text profile bio, shown on the profile page. Nullable with no default,
-- so PostgreSQL adds it without rewriting the table and existing users keep NULL.
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

ALTER TABLE public.users ADD COLUMN bio text;
