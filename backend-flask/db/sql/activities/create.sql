-- activities/create.sql: a new activity by a user, returned in the feed's shape.
-- (The main query cannot see the CTE's insert through activity_items, so it joins RETURNING.)
-- Params: user_uuid, message, ttl (an interval).
-- Returns: body (JSON object text).
WITH inserted AS (
  INSERT INTO public.activities (user_uuid, message, expires_at)
  VALUES (%(user_uuid)s::uuid, %(message)s, now() + %(ttl)s::interval)
  RETURNING *
)
SELECT row_to_json(item)::text AS body
FROM (
  SELECT n.uuid, u.display_name, u.handle, n.message,
         n.replies_count, n.reposts_count, n.likes_count,
         n.reply_to_activity_uuid, n.expires_at, n.created_at,
         '[]'::json AS replies
  FROM inserted n
  JOIN public.users u ON u.uuid = n.user_uuid
) item;
