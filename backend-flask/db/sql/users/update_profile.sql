-- users/update_profile.sql: the signed-in user's new display name and bio, answered with their
-- profile in the shape of activities/user.sql's. The user is found by their Cognito sub in the
-- same statement; an unknown sub changes nothing and returns no row.
-- (The main query cannot see the CTE's update through user_profiles, so the new display_name
-- and bio come from RETURNING.)
-- Params: cognito_user_id, display_name, bio (NULL clears it).
-- Returns: body (JSON object text); no row when no user has that cognito_user_id.
WITH updated AS (
  UPDATE public.users
  SET display_name = %(display_name)s, bio = %(bio)s
  WHERE cognito_user_id = %(cognito_user_id)s
  RETURNING uuid, display_name, bio
)
SELECT row_to_json(profile)::text AS body
FROM (
  SELECT p.uuid, p.handle, u.display_name, u.bio, p.cruds_count, p.cognito_user_uuid
  FROM updated u
  JOIN public.user_profiles p ON p.uuid = u.uuid
) profile;
