-- db/migrations/20261204055924_activities_expires_index.up.sql
-- activities_expires_index: the expired activities, oldest expiry first, for the purge
-- (purge_expired_activities), which would otherwise read the whole table for each batch.
--
-- migrate: no-transaction
-- Built concurrently, outside a transaction: a plain CREATE INDEX would stop every write to
-- activities for as long as it builds. A build that failed or timed out leaves an invalid
-- index: the DROP makes the file safe to run again.

SET client_min_messages = warning;  -- no "does not exist, skipping" notice
DROP INDEX CONCURRENTLY IF EXISTS public.activities_expires_idx;
CREATE INDEX CONCURRENTLY activities_expires_idx ON public.activities (expires_at);
