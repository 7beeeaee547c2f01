-- db/migrations/20261125122111_feed_indexes.up.sql
-- feed_indexes: every list query reads an index range the size of its page, whatever the size of
-- the table (issue 9; the plans are in bench/PLANS.md).
--   - reply_to_user_uuid: the author of the activity a reply answers, kept by a trigger, so the
--     notifications feed reads one index range instead of the replies to each of the caller's
--     activities (which grows with everything the caller ever posted);
--   - activities_created_idx: every activity newest first, which search walks when its term is
--     common (the trigram index serves a rare term);
--   - activities_user_live_idx: a user's top-level activities with their expires_at, so a user's
--     feed and its cruds_count read the index alone.
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

-- Not a foreign key: when the parent's author goes, the parent goes, and its replies with it.
ALTER TABLE public.activities ADD COLUMN reply_to_user_uuid uuid;

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

UPDATE public.activities r
SET reply_to_user_uuid = p.user_uuid
FROM public.activities p
WHERE p.uuid = r.reply_to_activity_uuid;

-- Notifications: the replies to a user's activities, newest first.
CREATE INDEX activities_notifications_idx
  ON public.activities (reply_to_user_uuid, created_at DESC, uuid DESC)
  WHERE reply_to_user_uuid IS NOT NULL;

-- Search: every activity, newest first.
CREATE INDEX activities_created_idx
  ON public.activities (created_at DESC, uuid DESC);

-- A user's top-level activities, newest first, with expires_at for an index-only cruds_count.
CREATE INDEX activities_user_live_idx
  ON public.activities (user_uuid, created_at DESC, uuid DESC) INCLUDE (expires_at)
  WHERE reply_to_activity_uuid IS NULL;
