-- db/migrations/20261204053146_users_profile_limits.up.sql
-- users_profile_limits: users edit their own profile (PUT /api/profile/update), so the database
-- holds the profile's limits itself: a display name of 1..50 characters, a bio of at most 160.
-- cruddur_app may update only those two columns of users (column grants): an injected UPDATE
-- through the API cannot change a handle, an email or the Cognito user a row belongs to.
-- The view user_profiles is the one definition of a profile as the API shows it (the user page,
-- the update's answer).
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

-- Rows over the limits cannot stay as they are: name them, and change nothing.
DO $$
DECLARE
  over text;
BEGIN
  SELECT string_agg(quote_literal(handle), ', ' ORDER BY handle COLLATE "C") INTO over
  FROM public.users
  WHERE char_length(display_name) NOT BETWEEN 1 AND 50 OR char_length(bio) > 160;
  IF over IS NOT NULL THEN
    RAISE EXCEPTION 'users whose display name is not 1..50 characters or whose bio is over 160: %', over
      USING HINT = 'shorten them (UPDATE public.users SET display_name = ..., bio = ...), then migrate again';
  END IF;
END
$$;

ALTER TABLE public.users
  ADD CONSTRAINT users_display_name_length CHECK (char_length(display_name) BETWEEN 1 AND 50),
  ADD CONSTRAINT users_bio_length CHECK (char_length(bio) <= 160);

REVOKE UPDATE ON public.users FROM cruddur_app;
GRANT UPDATE (display_name, bio) ON public.users TO cruddur_app;

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

GRANT SELECT ON public.user_profiles TO cruddur_app;
