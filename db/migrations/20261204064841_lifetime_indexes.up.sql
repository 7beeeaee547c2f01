-- db/migrations/20261204064841_lifetime_indexes.up.sql
-- lifetime_indexes: the home feed, a user's page and notifications read, per lifetime class
-- (1 hour ... 30 days), only the activities created within that class's longest life, so a table
-- full of expired activities costs them no more than a live one. Their three indexes lead with
-- the class; the old ones go once the new ones are built.
-- Built concurrently (no lock that stops the API's writes), so outside a transaction; each
-- statement can run again after a failure.
-- migrate: no-transaction

-- An activity's lifetime class: the shortest of the API's ttls (1 hour ... 30 days) it lives no
-- longer than; 8 when it lives longer. Every live activity of class k was created less than
-- lifetime_classes()'s `longest` ago, so a list query reads, per class, only the activities
-- created within that window, newest first: what it reads does not grow with the expired rows
-- the table still holds (the purge removes them a day later).
CREATE OR REPLACE FUNCTION public.lifetime_class(created_at timestamptz, expires_at timestamptz)
RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN expires_at - created_at <= interval '1 hour' THEN 1
    WHEN expires_at - created_at <= interval '3 hours' THEN 2
    WHEN expires_at - created_at <= interval '12 hours' THEN 3
    WHEN expires_at - created_at <= interval '1 day' THEN 4
    WHEN expires_at - created_at <= interval '3 days' THEN 5
    WHEN expires_at - created_at <= interval '7 days' THEN 6
    WHEN expires_at - created_at <= interval '30 days' THEN 7
    ELSE 8
  END::smallint
$$;

-- The lifetime classes and the longest an activity of each lives (lifetime_class()'s bounds).
CREATE OR REPLACE FUNCTION public.lifetime_classes()
RETURNS TABLE (class smallint, longest interval) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  VALUES (1::smallint, interval '1 hour'), (2, interval '3 hours'), (3, interval '12 hours'),
         (4, interval '1 day'), (5, interval '3 days'), (6, interval '7 days'),
         (7, interval '30 days'), (8, interval '1000 years')
$$;

DROP INDEX CONCURRENTLY IF EXISTS public.activities_home_lifetime_idx;
CREATE INDEX CONCURRENTLY activities_home_lifetime_idx
  ON public.activities (public.lifetime_class(created_at, expires_at), created_at DESC, uuid DESC)
  INCLUDE (expires_at)
  WHERE reply_to_activity_uuid IS NULL;

DROP INDEX CONCURRENTLY IF EXISTS public.activities_user_lifetime_idx;
CREATE INDEX CONCURRENTLY activities_user_lifetime_idx
  ON public.activities (user_uuid, public.lifetime_class(created_at, expires_at), created_at DESC, uuid DESC)
  INCLUDE (expires_at)
  WHERE reply_to_activity_uuid IS NULL;

DROP INDEX CONCURRENTLY IF EXISTS public.activities_notifications_lifetime_idx;
CREATE INDEX CONCURRENTLY activities_notifications_lifetime_idx
  ON public.activities (reply_to_user_uuid, public.lifetime_class(created_at, expires_at), created_at DESC, uuid DESC)
  INCLUDE (expires_at, user_uuid)
  WHERE reply_to_user_uuid IS NOT NULL;

DROP INDEX CONCURRENTLY IF EXISTS public.activities_home_idx;
DROP INDEX CONCURRENTLY IF EXISTS public.activities_user_live_idx;
DROP INDEX CONCURRENTLY IF EXISTS public.activities_notifications_idx;
