-- db/migrations/20261204055924_activities_expires_index.down.sql
-- Undo activities_expires_index.
-- migrate: no-transaction

SET client_min_messages = warning;  -- no "does not exist, skipping" notice
DROP INDEX CONCURRENTLY IF EXISTS public.activities_expires_idx;
