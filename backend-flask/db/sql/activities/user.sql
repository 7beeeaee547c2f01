-- activities/user.sql: a user's profile (the view user_profiles) and one page of their live
-- top-level activities, newest first, replies nested (public.activity_page()). No row when the
-- handle is unknown.
-- Params: handle, limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON object text), next_created_at, next_uuid (NULL on the last page).
WITH profile AS (
  SELECT * FROM public.user_profiles WHERE lower(handle) = lower(%(handle)s)
)
SELECT json_build_object('profile', row_to_json(profile), 'activities', page.body)::text AS body,
       page.next_created_at, page.next_uuid
FROM profile
CROSS JOIN public.activity_page(ARRAY(
  -- the user is a value here (the subquery), not a join, so the scan of
  -- activities_user_live_idx comes out newest first and stops after the page
  SELECT a.uuid FROM public.activities a
  WHERE a.user_uuid = (SELECT uuid FROM profile)
    AND a.reply_to_activity_uuid IS NULL
    AND a.expires_at > now()
    AND (a.created_at, a.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
  ORDER BY a.created_at DESC, a.uuid DESC
  LIMIT %(limit)s + 1
), %(limit)s) page;
