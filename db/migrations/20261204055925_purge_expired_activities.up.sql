-- db/migrations/20261204055925_purge_expired_activities.up.sql
-- purge_expired_activities: expired activities leave. The product promises to forget a crud once
-- it expires, and every list query walks past the expired rows it keeps: a purge deletes them
-- (no archive) once they have been expired for a grace period, in small batches that the API
-- never waits on, as a role that can do that and nothing else (docs/decisions/0014-purge-schedule.md).
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

-- cruddur_purge: the role the scheduled purge runs as. It may run the purge and nothing else: no
-- right on any table (the batch function runs with its owner's rights, SECURITY DEFINER, and
-- removes only rows that expired). Created only when missing, without a password, like
-- cruddur_app.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'cruddur_purge') THEN
    CREATE ROLE cruddur_purge LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
EXCEPTION WHEN duplicate_object THEN
  NULL;  -- created meanwhile from another database of this server
END
$$;

-- One batch of the purge, in the caller's transaction: up to batch_size activities that expired
-- before cutoff (never after now()), oldest expiry first, removed, and the counts they were in
-- kept right. It locks only rows nobody holds (SKIP LOCKED) and only expired ones, which the API
-- never locks, so the API does not wait on it. A reply goes before its parent (a row with replies
-- waits for a later batch): no live reply goes with its parent, nothing goes by cascade uncounted.
-- A parent that stays counts one reply fewer per reply purged (only data loaded outside the API
-- has such replies: the API's expire with their parent). user_crud_expiries follows by its
-- trigger, in periods the API no longer writes when the cutoff is 6 hours old or more.
-- Returns how many top-level cruds and how many replies it removed.
CREATE FUNCTION public.purge_expired_activities_batch(cutoff timestamptz, batch_size integer)
RETURNS TABLE (cruds bigint, replies bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH batch AS (
    SELECT a.uuid
    FROM public.activities a
    WHERE a.expires_at < least(cutoff, now())
      AND NOT EXISTS (SELECT FROM public.activities r WHERE r.reply_to_activity_uuid = a.uuid)
    ORDER BY a.expires_at
    LIMIT batch_size
    FOR UPDATE OF a SKIP LOCKED
  ),
  purged AS (
    DELETE FROM public.activities a
    USING batch
    WHERE a.uuid = batch.uuid
    RETURNING a.reply_to_activity_uuid
  ),
  recounted AS (
    UPDATE public.activities p
    SET replies_count = greatest(p.replies_count - gone.replies, 0)
    FROM (SELECT reply_to_activity_uuid AS uuid, count(*) AS replies
          FROM purged
          WHERE reply_to_activity_uuid IS NOT NULL
          GROUP BY 1) gone
    WHERE p.uuid = gone.uuid AND p.expires_at >= least(cutoff, now())
  )
  SELECT count(*) FILTER (WHERE reply_to_activity_uuid IS NULL),
         count(*) FILTER (WHERE reply_to_activity_uuid IS NOT NULL)
  FROM purged
$$;

-- The purge: every activity that expired more than `grace` ago, batch after batch, each
-- committed on its own (so no lock is held for longer than a batch), until none is left. CALL it
-- outside a transaction block (psql, pg_cron). Returns what it removed: cruds, replies, and in
-- how many batches. (docs/decisions/0014-purge-schedule.md)
CREATE PROCEDURE public.purge_expired_activities(
  grace interval DEFAULT '1 day',
  batch_size integer DEFAULT 2000,
  INOUT cruds bigint DEFAULT 0,
  INOUT replies bigint DEFAULT 0,
  INOUT batches integer DEFAULT 0
)
LANGUAGE plpgsql AS $$
DECLARE
  cutoff constant timestamptz := now() - grace;
  removed record;
BEGIN
  IF grace IS NULL OR grace < interval '0' THEN
    RAISE EXCEPTION 'grace must be a period of 0 or more (e.g. 1 day), not %', coalesce(grace::text, 'NULL');
  END IF;
  IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 100000 THEN
    RAISE EXCEPTION 'batch_size must be between 1 and 100000, not %', coalesce(batch_size::text, 'NULL');
  END IF;
  cruds := 0;
  replies := 0;
  batches := 0;
  LOOP
    SELECT * INTO removed FROM public.purge_expired_activities_batch(cutoff, batch_size);
    EXIT WHEN removed.cruds + removed.replies = 0;
    cruds := cruds + removed.cruds;
    replies := replies + removed.replies;
    batches := batches + 1;
    COMMIT;
  END LOOP;
END
$$;

-- What cruddur_purge may do: run the purge. Functions and procedures are PUBLIC's to run unless
-- taken back: these are taken back, so cruddur_app cannot purge.
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO cruddur_purge', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO cruddur_purge;
REVOKE ALL ON FUNCTION public.purge_expired_activities_batch(timestamptz, integer) FROM PUBLIC;
REVOKE ALL ON PROCEDURE public.purge_expired_activities(interval, integer, bigint, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.purge_expired_activities_batch(timestamptz, integer) TO cruddur_purge;
GRANT EXECUTE ON PROCEDURE public.purge_expired_activities(interval, integer, bigint, bigint, integer)
  TO cruddur_purge;
