-- activities/reply.sql: a reply to a live activity, counted on the parent in the same statement
-- (the UPDATE's row lock serialises concurrent replies, so no count is lost). The reply
-- expires with its parent. No row when the parent is unknown or expired.
-- Params: parent_uuid, user_uuid, message.
-- Returns: body (JSON object text).
WITH parent AS (
  UPDATE public.activities
  SET replies_count = replies_count + 1
  WHERE uuid = %(parent_uuid)s::uuid AND expires_at > now()
  RETURNING uuid, expires_at
),
inserted AS (
  INSERT INTO public.activities (user_uuid, message, reply_to_activity_uuid, expires_at)
  SELECT %(user_uuid)s::uuid, %(message)s, parent.uuid, parent.expires_at
  FROM parent
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
