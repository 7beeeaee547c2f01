-- activities/create.sql: a new activity by the signed-in user, returned in the feed's shape.
-- The author is found by their Cognito sub in the same statement (one round trip); an unknown
-- sub inserts nothing and returns no row.
-- (The main query cannot see the CTE's insert through activity_items, so it joins RETURNING.)
-- Params: cognito_user_id, message, ttl (an interval).
-- Returns: body (JSON object text); no row when no user has that cognito_user_id.
WITH author AS (
  SELECT uuid, display_name, handle FROM public.users WHERE cognito_user_id = %(cognito_user_id)s
),
inserted AS (
  INSERT INTO public.activities (user_uuid, message, expires_at)
  SELECT author.uuid, %(message)s, now() + %(ttl)s::interval
  FROM author
  RETURNING *
)
SELECT row_to_json(item)::text AS body
FROM (
  SELECT n.uuid, a.display_name, a.handle, n.message,
         n.replies_count, n.reposts_count, n.likes_count,
         n.reply_to_activity_uuid, n.expires_at, n.created_at,
         '[]'::json AS replies
  FROM inserted n
  JOIN author a ON a.uuid = n.user_uuid
) item;
