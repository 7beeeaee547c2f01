-- db/migrations/20261204064841_lifetime_indexes.down.sql: the list indexes without lifetime
-- classes back, then the new ones and the functions gone.
-- migrate: no-transaction

DROP INDEX CONCURRENTLY IF EXISTS public.activities_home_idx;
CREATE INDEX CONCURRENTLY activities_home_idx
  ON public.activities (created_at DESC, uuid DESC)
  WHERE reply_to_activity_uuid IS NULL;

DROP INDEX CONCURRENTLY IF EXISTS public.activities_user_live_idx;
CREATE INDEX CONCURRENTLY activities_user_live_idx
  ON public.activities (user_uuid, created_at DESC, uuid DESC) INCLUDE (expires_at)
  WHERE reply_to_activity_uuid IS NULL;

DROP INDEX CONCURRENTLY IF EXISTS public.activities_notifications_idx;
CREATE INDEX CONCURRENTLY activities_notifications_idx
  ON public.activities (reply_to_user_uuid, created_at DESC, uuid DESC)
  WHERE reply_to_user_uuid IS NOT NULL;

DROP INDEX CONCURRENTLY IF EXISTS public.activities_home_lifetime_idx;
DROP INDEX CONCURRENTLY IF EXISTS public.activities_user_lifetime_idx;
DROP INDEX CONCURRENTLY IF EXISTS public.activities_notifications_lifetime_idx;
DROP FUNCTION IF EXISTS public.lifetime_classes();
DROP FUNCTION IF EXISTS public.lifetime_class(timestamptz, timestamptz);
