-- db/schema.sql: the Cruddur schema, loaded by bin/db-schema-load.
-- Re-runnable: it drops and recreates the tables (for a database holding data, use migrations).
-- UUID keys come from the built-in gen_random_uuid() (PostgreSQL 13+, no extension).
--
-- It is the schema every migration in db/migrations/ up to the version below builds, and
-- tests/test_migrations.py checks that the two agree. bin/db-schema-load records those
-- migrations in schema_migrations, so bin/db-migrate finds the database up to date.
-- A new migration: make the same change here (a new column goes last, where ALTER TABLE puts
-- it) and set this line to its version (README, "Schema changes: migrations").
-- schema version: 20261125114224

SET client_min_messages = warning;  -- no "does not exist, skipping" notices

CREATE EXTENSION IF NOT EXISTS pg_trgm;  -- trigram index for search (available on RDS)

DROP FUNCTION IF EXISTS public.activity_replies(uuid, integer);
DROP VIEW IF EXISTS public.activity_items;
DROP TABLE IF EXISTS public.activities;
DROP TABLE IF EXISTS public.users;

CREATE TABLE public.users (
  uuid            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  display_name    text        NOT NULL,
  email           text        NOT NULL,
  handle          text        NOT NULL,
  cognito_user_id text,       -- NULL until the user signs up through Cognito (seed users)
  created_at      timestamptz NOT NULL DEFAULT now(),
  bio             text,       -- profile text; NULL until the user writes one
  CONSTRAINT users_handle_key UNIQUE (handle),
  CONSTRAINT users_cognito_user_id_key UNIQUE (cognito_user_id),
  CONSTRAINT users_handle_not_blank CHECK (handle <> '')
);

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
    CHECK (replies_count >= 0 AND reposts_count >= 0 AND likes_count >= 0)
);

-- Home feed: top-level activities, newest first, keyset on (created_at, uuid).
CREATE INDEX activities_home_idx
  ON public.activities (created_at DESC, uuid DESC)
  WHERE reply_to_activity_uuid IS NULL;

-- A user's activities, newest first (also serves the user_uuid foreign key).
CREATE INDEX activities_user_idx
  ON public.activities (user_uuid, created_at DESC, uuid DESC);

-- The replies of an activity, oldest first (also serves the reply_to_activity_uuid foreign key).
CREATE INDEX activities_replies_idx
  ON public.activities (reply_to_activity_uuid, created_at, uuid)
  WHERE reply_to_activity_uuid IS NOT NULL;

-- Search: case-insensitive "contains" (ILIKE '%term%') served by trigrams.
CREATE INDEX activities_message_trgm_idx
  ON public.activities USING gin (message gin_trgm_ops);

-- An activity as the API shows it: its public fields and its author's.
-- Every list query reads this view, so the shape is defined once.
CREATE VIEW public.activity_items AS
SELECT a.uuid, u.display_name, u.handle, a.message,
       a.replies_count, a.reposts_count, a.likes_count,
       a.reply_to_activity_uuid, a.expires_at, a.created_at
FROM public.activities a
JOIN public.users u ON u.uuid = a.user_uuid;

-- The live replies of an activity as a JSON array, oldest first, at most max_replies
-- (replies_count has the total); '[]' when none, never NULL.
CREATE FUNCTION public.activity_replies(activity_uuid uuid, max_replies integer DEFAULT 20)
RETURNS json LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(json_agg(r ORDER BY r.created_at, r.uuid), '[]')
  FROM (
    SELECT i.* FROM public.activity_items i
    WHERE i.reply_to_activity_uuid = activity_uuid AND i.expires_at > now()
    ORDER BY i.created_at, i.uuid
    LIMIT max_replies
  ) r
$$;
