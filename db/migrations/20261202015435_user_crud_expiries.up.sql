-- db/migrations/20261202015435_user_crud_expiries.up.sql
-- user_crud_expiries: a profile's cruds_count (the user's live top-level activities) without
-- counting them one by one. Counting read every live crud of the user: 34,000 index entries and
-- 7 ms for the busiest user of bin/bench's million activities, a cost that grows with what the
-- user has posted. Now a trigger keeps, per user and per six hours, how many cruds expire in
-- that period; the count adds the periods still to come (at most 120 rows for the 30-day ttl)
-- and counts the current period's live cruds exactly, through a small index range. (Six hours:
-- hourly counts meant 720 rows to add for a busy user, daily ones a day of cruds to count.)
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

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
-- deletes it.
CREATE FUNCTION public.activities_count_crud_expiry() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.reply_to_activity_uuid IS NULL THEN
    UPDATE public.user_crud_expiries SET cruds = cruds - 1
    WHERE user_uuid = OLD.user_uuid AND expires_period = public.expiry_period(OLD.expires_at);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.reply_to_activity_uuid IS NULL THEN
    INSERT INTO public.user_crud_expiries AS e (user_uuid, expires_period, cruds)
    VALUES (NEW.user_uuid, public.expiry_period(NEW.expires_at), 1)
    ON CONFLICT (user_uuid, expires_period) DO UPDATE SET cruds = e.cruds + 1;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER activities_count_crud_expiry
  AFTER INSERT OR DELETE OR UPDATE OF user_uuid, expires_at, reply_to_activity_uuid
  ON public.activities
  FOR EACH ROW EXECUTE FUNCTION public.activities_count_crud_expiry();

INSERT INTO public.user_crud_expiries (user_uuid, expires_period, cruds)
SELECT user_uuid, public.expiry_period(expires_at), count(*)
FROM public.activities
WHERE reply_to_activity_uuid IS NULL
GROUP BY 1, 2;

-- The current period's cruds of a user, counted exactly.
CREATE INDEX activities_user_expiry_idx
  ON public.activities (user_uuid, expires_at)
  WHERE reply_to_activity_uuid IS NULL;

GRANT SELECT, INSERT, UPDATE ON public.user_crud_expiries TO cruddur_app;
