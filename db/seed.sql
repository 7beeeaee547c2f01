-- db/seed.sql: sample data for development, loaded by bin/db-seed.
-- Idempotent: running it again adds nothing.

INSERT INTO public.users (display_name, email, handle, cognito_user_id)
VALUES
  ('Chris Fenton', 'chris.fenton@example.com', 'chrisfenton', NULL),
  ('Antwuan Jacobs', 'antwuan.jacobs@example.com', 'bayko', NULL)
ON CONFLICT ((lower(handle))) DO NOTHING;

INSERT INTO public.activities (user_uuid, message, expires_at)
SELECT u.uuid, 'This was imported as seed data!', now() + interval '10 days'
FROM public.users u
WHERE u.handle = 'chrisfenton'
  AND NOT EXISTS (
    SELECT 1 FROM public.activities a
    WHERE a.user_uuid = u.uuid AND a.message = 'This was imported as seed data!'
  );
