-- activities/reply.sql: the signed-in user's reply to a live activity, counted on the parent in
-- the same statement (the UPDATE's row lock serialises concurrent replies, so no count is lost).
-- The reply expires with its parent. The author is found by their Cognito sub; an unknown sub
-- or an unknown or expired parent changes nothing.
-- Params: cognito_user_id, parent_uuid, message.
-- Returns: known_user (boolean), body (JSON object text; NULL when nothing was inserted).
WITH author AS (
  SELECT uuid, display_name, handle FROM public.users WHERE cognito_user_id = %(cognito_user_id)s
),
parent AS (
  UPDATE public.activities
  SET replies_count = replies_count + 1
  WHERE uuid = %(parent_uuid)s::uuid AND expires_at > now() AND EXISTS (SELECT FROM author)
  RETURNING uuid, expires_at
),
inserted AS (
  INSERT INTO public.activities (user_uuid, message, reply_to_activity_uuid, expires_at)
  SELECT author.uuid, %(message)s, parent.uuid, parent.expires_at
  FROM parent, author
  RETURNING *
)
SELECT EXISTS (SELECT FROM author) AS known_user,
       (SELECT row_to_json(item)::text
        FROM (
          SELECT n.uuid, a.display_name, a.handle, n.message,
                 n.replies_count, n.reposts_count, n.likes_count,
                 n.reply_to_activity_uuid, n.expires_at, n.created_at,
                 '[]'::json AS replies
          FROM inserted n
          JOIN author a ON a.uuid = n.user_uuid
        ) item) AS body;
