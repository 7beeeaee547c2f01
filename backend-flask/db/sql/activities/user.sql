-- activities/user.sql: a user's profile (the view user_profiles) and one page of their live
-- top-level activities, newest first, replies nested (public.activity_page()). No row when the
-- handle is unknown. Read per lifetime class, as the home feed is; the user is a value (the
-- subquery), so each class's scan of activities_user_lifetime_idx stops after the page.
-- Params: handle, limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON object text), next_created_at, next_uuid (NULL on the last page).
WITH profile AS (
  SELECT * FROM public.user_profiles WHERE lower(handle) = lower(%(handle)s)
)
SELECT json_build_object('profile', row_to_json(profile), 'activities', page.body)::text AS body,
       page.next_created_at, page.next_uuid
FROM profile
CROSS JOIN public.activity_page(ARRAY(
  {{ activities/_live_per_lifetime_class |
     a.user_uuid = (SELECT uuid FROM profile) AND a.reply_to_activity_uuid IS NULL }}
), %(limit)s) page;
