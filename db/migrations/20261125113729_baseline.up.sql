-- db/migrations/20261125113729_baseline.up.sql
-- baseline: the schema as db/schema.sql built it before migrations existed (users, activities
-- and the feed indexes). A database built by that older schema.sql already has it: record it
-- there with `bin/db-migrate prod --baseline` instead of running it.
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

CREATE TABLE public.users (
  uuid            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  display_name    text        NOT NULL,
  email           text        NOT NULL,
  handle          text        NOT NULL,
  cognito_user_id text,       -- NULL until the user signs up through Cognito (seed users)
  created_at      timestamptz NOT NULL DEFAULT now(),
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
