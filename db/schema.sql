-- db/schema.sql: the Cruddur schema, loaded by bin/db-schema-load.
-- Re-runnable: it drops and recreates the tables (for a database holding data, use migrations).
-- UUID keys come from the built-in gen_random_uuid() (PostgreSQL 13+, no extension).
--
-- It is the schema every migration in db/migrations/ up to the version below builds, and
-- tests/test_migrations.py checks that the two agree. bin/db-schema-load records those
-- migrations in schema_migrations, so bin/db-migrate finds the database up to date.
-- A new migration: make the same change here (a new column goes last, where ALTER TABLE puts
-- it) and set this line to its version (README, "Schema changes: migrations").
-- schema version: 20261204064841

SET client_min_messages = warning;  -- no "does not exist, skipping" notices

CREATE EXTENSION IF NOT EXISTS pg_trgm;  -- trigram index for search (available on RDS)

-- The roles, which own nothing. A role belongs to the server, not to one database: each is created
-- only when missing, and without a password (it cannot log in until an operator sets one, e.g.
-- `\password cruddur_app` in bin/db-connect).
-- cruddur_app: the role the API connects as. It reads and writes rows (SELECT, INSERT, UPDATE,
-- granted at the end of this file; of users it may update only display_name and bio) and nothing
-- else: no DELETE or TRUNCATE, no DDL. A new table is granted to it here and in its migration.
-- cruddur_purge: the role the scheduled purge runs as. It may run the purge and nothing else: no
-- right on any table (the batch function runs with its owner's rights, SECURITY DEFINER, and
-- removes only rows that expired).
DO $$
DECLARE
  role text;
BEGIN
  FOREACH role IN ARRAY ARRAY['cruddur_app', 'cruddur_purge'] LOOP
    BEGIN
      IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role) THEN
        EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION'
                       ' NOBYPASSRLS', role);
      END IF;
    EXCEPTION WHEN duplicate_object THEN
      NULL;  -- created meanwhile from another database of this server
    END;
  END LOOP;
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

DROP PROCEDURE IF EXISTS public.purge_expired_activities(interval, integer, bigint, bigint, integer);
DROP FUNCTION IF EXISTS public.purge_expired_activities_batch(timestamptz, integer);
DROP FUNCTION IF EXISTS public.activity_page(uuid[], integer);
DROP FUNCTION IF EXISTS public.activity_replies(uuid, integer);  -- before activity_page
DROP VIEW IF EXISTS public.user_profiles;
DROP VIEW IF EXISTS public.activity_items;
DROP TABLE IF EXISTS public.user_crud_expiries;
DROP TABLE IF EXISTS public.activities;
DROP TABLE IF EXISTS public.users;
DROP FUNCTION IF EXISTS public.activities_set_reply_to_user();
DROP FUNCTION IF EXISTS public.activities_count_crud_expiry();
DROP FUNCTION IF EXISTS public.activities_count_inserted_cruds();
DROP FUNCTION IF EXISTS public.activities_count_deleted_cruds();
DROP FUNCTION IF EXISTS public.expiry_period(timestamptz);
DROP FUNCTION IF EXISTS public.lifetime_classes();
DROP FUNCTION IF EXISTS public.lifetime_class(timestamptz, timestamptz);

CREATE TABLE public.users (
  uuid            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  display_name    text        NOT NULL,
  email           text        NOT NULL,
  handle          text        NOT NULL,
  cognito_user_id text,       -- NULL until the user signs up through Cognito (seed users)
  created_at      timestamptz NOT NULL DEFAULT now(),
  bio             text,       -- profile text; NULL until the user writes one
  CONSTRAINT users_cognito_user_id_key UNIQUE (cognito_user_id),
  CONSTRAINT users_handle_not_blank CHECK (handle <> ''),
  -- the profile's limits, as the API's profile update checks them
  CONSTRAINT users_display_name_length CHECK (char_length(display_name) BETWEEN 1 AND 50),
  CONSTRAINT users_bio_length CHECK (char_length(bio) <= 160)
);

-- A handle is one name whatever its case: `ChrisFenton` and `chrisfenton` are the same handle.
-- Lookups by handle compare lower(handle) = lower($1), served by this index; the stored
-- spelling is what the API shows.
CREATE UNIQUE INDEX users_handle_lower_key ON public.users (lower(handle));

CREATE TABLE public.activities (
  uuid                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_uuid              uuid        NOT NULL REFERENCES public.users (uuid) ON DELETE CASCADE,
  message                text        NOT NULL,
  replies_count          integer     NOT NULL DEFAULT 0,
  reposts_count          integer     NOT NULL DEFAULT 0,
  likes_count            integer     NOT NULL DEFAULT 0,
  reply_to_activity_uuid uuid        REFERENCES public.activities (uuid) ON DELETE CASCADE,
  expires_at             timestamptz NOT NULL,
  created_at             timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT activities_message_length CHECK (char_length(message) BETWEEN 1 AND 280),
  CONSTRAINT activities_counts_not_negative
    CHECK (replies_count >= 0 AND reposts_count >= 0 AND likes_count >= 0),
  -- The author of the activity this one replies to (set by the trigger below), for notifications.
  -- Not a foreign key: when the parent's author goes, the parent goes, and its replies with it.
  reply_to_user_uuid     uuid
);

-- reply_to_user_uuid follows reply_to_activity_uuid, whoever inserts the row.
CREATE FUNCTION public.activities_set_reply_to_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.reply_to_user_uuid := (SELECT p.user_uuid FROM public.activities p
                             WHERE p.uuid = NEW.reply_to_activity_uuid);
  RETURN NEW;
END
$$;

CREATE TRIGGER activities_reply_to_user
  BEFORE INSERT OR UPDATE OF reply_to_activity_uuid, reply_to_user_uuid ON public.activities
  FOR EACH ROW EXECUTE FUNCTION public.activities_set_reply_to_user();

-- A user's activities, newest first (also serves the user_uuid foreign key).
CREATE INDEX activities_user_idx
  ON public.activities (user_uuid, created_at DESC, uuid DESC);

-- The replies of an activity, oldest first (also serves the reply_to_activity_uuid foreign key).
CREATE INDEX activities_replies_idx
  ON public.activities (reply_to_activity_uuid, created_at, uuid)
  WHERE reply_to_activity_uuid IS NOT NULL;

-- An activity's lifetime class: the shortest of the API's ttls (1 hour ... 30 days) it lives no
-- longer than; 8 when it lives longer. Every live activity of class k was created less than
-- lifetime_classes()'s `longest` ago, so a list query reads, per class, only the activities
-- created within that window, newest first: what it reads does not grow with the expired rows
-- the table still holds (the purge removes them a day later).
CREATE FUNCTION public.lifetime_class(created_at timestamptz, expires_at timestamptz)
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
CREATE FUNCTION public.lifetime_classes()
RETURNS TABLE (class smallint, longest interval) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  VALUES (1::smallint, interval '1 hour'), (2, interval '3 hours'), (3, interval '12 hours'),
         (4, interval '1 day'), (5, interval '3 days'), (6, interval '7 days'),
         (7, interval '30 days'), (8, interval '1000 years')
$$;

-- Home feed: top-level activities by lifetime class, newest first.
CREATE INDEX activities_home_lifetime_idx
  ON public.activities (public.lifetime_class(created_at, expires_at), created_at DESC, uuid DESC)
  INCLUDE (expires_at)
  WHERE reply_to_activity_uuid IS NULL;

-- A user's top-level activities by lifetime class, newest first.
CREATE INDEX activities_user_lifetime_idx
  ON public.activities (user_uuid, public.lifetime_class(created_at, expires_at), created_at DESC, uuid DESC)
  INCLUDE (expires_at)
  WHERE reply_to_activity_uuid IS NULL;

-- Notifications: the replies to a user's activities by lifetime class, newest first.
CREATE INDEX activities_notifications_lifetime_idx
  ON public.activities (reply_to_user_uuid, public.lifetime_class(created_at, expires_at), created_at DESC, uuid DESC)
  INCLUDE (expires_at, user_uuid)
  WHERE reply_to_user_uuid IS NOT NULL;

-- Search, for a common term: every activity, newest first.
CREATE INDEX activities_created_idx
  ON public.activities (created_at DESC, uuid DESC);

-- Search: case-insensitive "contains" (ILIKE '%term%') served by trigrams.
CREATE INDEX activities_message_trgm_idx
  ON public.activities USING gin (message gin_trgm_ops);

-- A profile's cruds_count (the user's live top-level activities) without counting them one by
-- one: per user and per six hours, how many cruds expire in that period, kept by a trigger. The
-- count adds the periods still to come and counts the current period's exactly
-- (activities_user_expiry_idx).
-- The six hours (from 00, 06, 12 or 18 UTC) an instant falls in, whatever the session's TimeZone.
CREATE FUNCTION public.expiry_period(at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_timestamp(floor(extract(epoch FROM at) / 21600) * 21600)
$$;

-- Past periods are never read again; they only take space (a row per user and period at most).
CREATE TABLE public.user_crud_expiries (
  user_uuid    uuid        NOT NULL REFERENCES public.users (uuid) ON DELETE CASCADE,
  expires_period timestamptz NOT NULL,
  cruds        integer     NOT NULL CHECK (cruds >= 0),
  PRIMARY KEY (user_uuid, expires_period)
);

-- A top-level activity counts in its author's period of expiry, whoever inserts, updates or
-- deletes it. Inserts and deletes are counted once per statement, per user and period, from the
-- statement's rows (transition tables): in one transaction each update of a row leaves a version
-- the next update of that row walks past, so counting a bulk load row by row grew with the square
-- of its rows. Updates of a crud's author, expiry or parent (rare: the API never makes them) are
-- counted per row.
CREATE FUNCTION public.activities_count_crud_expiry() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.reply_to_activity_uuid IS NULL THEN
    UPDATE public.user_crud_expiries SET cruds = cruds - 1
    WHERE user_uuid = OLD.user_uuid AND expires_period = public.expiry_period(OLD.expires_at);
  END IF;
  IF NEW.reply_to_activity_uuid IS NULL THEN
    INSERT INTO public.user_crud_expiries AS e (user_uuid, expires_period, cruds)
    VALUES (NEW.user_uuid, public.expiry_period(NEW.expires_at), 1)
    ON CONFLICT (user_uuid, expires_period) DO UPDATE SET cruds = e.cruds + 1;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER activities_count_crud_expiry
  AFTER UPDATE OF user_uuid, expires_at, reply_to_activity_uuid ON public.activities
  FOR EACH ROW EXECUTE FUNCTION public.activities_count_crud_expiry();

CREATE FUNCTION public.activities_count_inserted_cruds() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.user_crud_expiries AS e (user_uuid, expires_period, cruds)
  SELECT user_uuid, public.expiry_period(expires_at), count(*)
  FROM inserted_activities
  WHERE reply_to_activity_uuid IS NULL
  GROUP BY 1, 2
  ORDER BY 1, 2  -- every statement locks rows in the same order: concurrent ones cannot deadlock
  ON CONFLICT (user_uuid, expires_period) DO UPDATE SET cruds = e.cruds + excluded.cruds;
  RETURN NULL;
END
$$;

CREATE TRIGGER activities_count_inserted_cruds
  AFTER INSERT ON public.activities
  REFERENCING NEW TABLE AS inserted_activities
  FOR EACH STATEMENT EXECUTE FUNCTION public.activities_count_inserted_cruds();

-- A past period whose last crud is deleted goes too: nothing reads past periods, and the API
-- never writes one.
CREATE FUNCTION public.activities_count_deleted_cruds() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  WITH deleted AS (
    SELECT user_uuid, public.expiry_period(expires_at) AS expires_period, count(*) AS cruds
    FROM deleted_activities
    WHERE reply_to_activity_uuid IS NULL
    GROUP BY 1, 2
  ),
  emptied_past AS (
    DELETE FROM public.user_crud_expiries e
    USING deleted d
    WHERE e.user_uuid = d.user_uuid AND e.expires_period = d.expires_period
      AND e.cruds <= d.cruds AND e.expires_period < public.expiry_period(now())
  )
  UPDATE public.user_crud_expiries e SET cruds = greatest(e.cruds - d.cruds, 0)
  FROM deleted d
  WHERE e.user_uuid = d.user_uuid AND e.expires_period = d.expires_period
    AND NOT (e.cruds <= d.cruds AND e.expires_period < public.expiry_period(now()));
  RETURN NULL;
END
$$;

CREATE TRIGGER activities_count_deleted_cruds
  AFTER DELETE ON public.activities
  REFERENCING OLD TABLE AS deleted_activities
  FOR EACH STATEMENT EXECUTE FUNCTION public.activities_count_deleted_cruds();

-- The current period's cruds of a user, counted exactly.
CREATE INDEX activities_user_expiry_idx
  ON public.activities (user_uuid, expires_at)
  WHERE reply_to_activity_uuid IS NULL;

-- A user's profile as the API shows it (the user page, the profile update's answer).
-- cruds_count: the cruds expiring in the six-hour periods to come (user_crud_expiries, kept by
-- a trigger) and those still live of the current period, counted: a cost that does not grow
-- with what the user has posted. cognito_user_uuid: the Cognito sub, under which the frontend
-- finds the avatar (NULL for a user who never signed up through Cognito).
CREATE VIEW public.user_profiles AS
SELECT u.uuid, u.handle, u.display_name, u.bio,
       (SELECT coalesce(sum(e.cruds), 0) FROM public.user_crud_expiries e
        WHERE e.user_uuid = u.uuid AND e.expires_period > public.expiry_period(now()))
       + (SELECT count(*) FROM public.activities a
          WHERE a.user_uuid = u.uuid AND a.reply_to_activity_uuid IS NULL
            AND a.expires_at > now()
            AND a.expires_at < public.expiry_period(now()) + interval '6 hours') AS cruds_count,
       u.cognito_user_id AS cognito_user_uuid
FROM public.users u;

-- The expired activities, oldest expiry first, for the purge (below).
CREATE INDEX activities_expires_idx ON public.activities (expires_at);

-- An activity as the API shows it: its public fields and its author's.
-- Every list query reads this view, so the shape is defined once.
CREATE VIEW public.activity_items AS
SELECT a.uuid, u.display_name, u.handle, a.message,
       a.replies_count, a.reposts_count, a.likes_count,
       a.reply_to_activity_uuid, a.expires_at, a.created_at
FROM public.activities a
JOIN public.users u ON u.uuid = a.user_uuid;

-- One page of activities as the API shows it, the one definition every list query uses: the
-- activities whose uuids `candidates` lists, in that order (a list query's rows, at most
-- page_size + 1: a row past the page says there is a next one), each with its first live replies
-- (oldest first, at most 20; replies_count has the total); and the keyset cursor of the page's
-- last row when there is a next page. plpgsql, so its plan is kept for the session.
CREATE FUNCTION public.activity_page(candidates uuid[], page_size integer)
RETURNS TABLE (body json, next_created_at timestamptz, next_uuid uuid)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
  WITH page AS (
    SELECT c.n, i
    FROM unnest(candidates[1:page_size]) WITH ORDINALITY AS c(uuid, n)
    JOIN public.activity_items i ON i.uuid = c.uuid
  )
  SELECT
    (SELECT coalesce(json_agg(x.item ORDER BY x.n), '[]')
     FROM (
       SELECT p.n, (SELECT item FROM (SELECT (p.i).*, replies.list AS replies) item) AS item
       FROM page p
       CROSS JOIN LATERAL (
         SELECT coalesce(json_agg(reply ORDER BY reply.created_at, reply.uuid), '[]') AS list
         FROM (
           SELECT r.* FROM public.activity_items r
           WHERE r.reply_to_activity_uuid = (p.i).uuid AND r.expires_at > now()
           ORDER BY r.created_at, r.uuid
           LIMIT 20
         ) reply
       ) replies
     ) x),
    (last.i).created_at, (last.i).uuid
  FROM (SELECT) one
  LEFT JOIN page last ON last.n = page_size AND cardinality(candidates) > page_size;
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

-- Both roles connect to this database and see its schema; what each may do follows.
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO cruddur_app, cruddur_purge', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO cruddur_app, cruddur_purge;

-- What cruddur_app may do (see the top of this file).
GRANT SELECT, INSERT, UPDATE ON public.activities, public.user_crud_expiries TO cruddur_app;
-- of users, only what a user edits: an injected UPDATE cannot change a handle, an email or the
-- Cognito user a row belongs to (the post-confirmation Lambda links users as another role)
GRANT SELECT, INSERT ON public.users TO cruddur_app;
GRANT UPDATE (display_name, bio) ON public.users TO cruddur_app;
GRANT SELECT ON public.activity_items, public.user_profiles TO cruddur_app;
GRANT EXECUTE ON FUNCTION public.activity_page(uuid[], integer) TO cruddur_app;

-- What cruddur_purge may do: run the purge. Functions and procedures are PUBLIC's to run unless
-- taken back: these are taken back, so cruddur_app cannot purge.
REVOKE ALL ON FUNCTION public.purge_expired_activities_batch(timestamptz, integer) FROM PUBLIC;
REVOKE ALL ON PROCEDURE public.purge_expired_activities(interval, integer, bigint, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.purge_expired_activities_batch(timestamptz, integer) TO cruddur_purge;
GRANT EXECUTE ON PROCEDURE public.purge_expired_activities(interval, integer, bigint, bigint, integer)
  TO cruddur_purge;
