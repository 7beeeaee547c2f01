-- db/migrations/20261202015435_user_crud_expiries.up.sql
-- user_crud_expiries: a profile's cruds_count (the user's live top-level activities) without
-- counting them one by one. Counting read every live crud of the user: 34,000 index entries and
-- 7 ms for the busiest user of bin/bench's million activities, a cost that grows with what the
-- user has posted. Now a trigger keeps, per user and per hour, how many cruds expire in that
-- hour; the count adds the hours still to come and counts the current hour's cruds exactly,
-- through a small index range.
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

-- The hour an instant falls in, whatever the session's TimeZone (date_trunc would follow it).
CREATE FUNCTION public.expiry_hour(at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_timestamp(floor(extract(epoch FROM at) / 3600) * 3600)
$$;

-- Past hours are never read again; they only take space (a row per user and hour at most).
CREATE TABLE public.user_crud_expiries (
  user_uuid    uuid        NOT NULL REFERENCES public.users (uuid) ON DELETE CASCADE,
  expires_hour timestamptz NOT NULL,
  cruds        integer     NOT NULL CHECK (cruds >= 0),
  PRIMARY KEY (user_uuid, expires_hour)
);

-- A top-level activity counts in its author's hour of expiry, whoever inserts, updates or
-- deletes it.
CREATE FUNCTION public.activities_count_crud_expiry() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.reply_to_activity_uuid IS NULL THEN
    UPDATE public.user_crud_expiries SET cruds = cruds - 1
    WHERE user_uuid = OLD.user_uuid AND expires_hour = public.expiry_hour(OLD.expires_at);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.reply_to_activity_uuid IS NULL THEN
    INSERT INTO public.user_crud_expiries AS e (user_uuid, expires_hour, cruds)
    VALUES (NEW.user_uuid, public.expiry_hour(NEW.expires_at), 1)
    ON CONFLICT (user_uuid, expires_hour) DO UPDATE SET cruds = e.cruds + 1;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER activities_count_crud_expiry
  AFTER INSERT OR DELETE OR UPDATE OF user_uuid, expires_at, reply_to_activity_uuid
  ON public.activities
  FOR EACH ROW EXECUTE FUNCTION public.activities_count_crud_expiry();

INSERT INTO public.user_crud_expiries (user_uuid, expires_hour, cruds)
SELECT user_uuid, public.expiry_hour(expires_at), count(*)
FROM public.activities
WHERE reply_to_activity_uuid IS NULL
GROUP BY 1, 2;

-- The current hour's cruds of a user, counted exactly.
CREATE INDEX activities_user_expiry_idx
  ON public.activities (user_uuid, expires_at)
  WHERE reply_to_activity_uuid IS NULL;

GRANT SELECT, INSERT, UPDATE ON public.user_crud_expiries TO cruddur_app;
