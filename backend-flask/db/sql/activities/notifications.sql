-- activities/notifications.sql: live replies by others to the signed-in user's activities, newest
-- first, each with its own replies nested (public.activity_page()). reply_to_user_uuid (kept by a
-- trigger) lets one index range per lifetime class (activities_notifications_lifetime_idx) serve
-- the page, however much the user has posted. The user is found by their Cognito sub in the same
-- statement.
-- Params: cognito_user_id, limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON array text), next_created_at, next_uuid (NULL on the last page); no row
-- when no user has that cognito_user_id.
WITH caller AS (
  SELECT uuid FROM public.users WHERE cognito_user_id = %(cognito_user_id)s
)
SELECT page.body::text, page.next_created_at, page.next_uuid
FROM caller
CROSS JOIN public.activity_page(ARRAY(
  {{ activities/_live_per_lifetime_class |
     a.reply_to_user_uuid = caller.uuid AND a.user_uuid <> caller.uuid }}
), %(limit)s) page;
