-- activities/post.sql: the signed-in user posts a crud (parent_uuid NULL: it expires after ttl)
-- or replies to a live activity (it expires with its parent, whose replies_count follows in the
-- same statement: the UPDATE's row lock serialises concurrent replies, so no count is lost).
-- The author is found by their Cognito sub; an unknown sub, or an unknown or expired parent,
-- changes nothing. (The main query cannot see the insert through activity_items, so it reads
-- RETURNING.)
-- Params: cognito_user_id, message, ttl (an interval, for a crud), parent_uuid (for a reply).
-- Returns: known_user (boolean), body (JSON object text in the feed's shape; NULL when nothing
-- was inserted).
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
  SELECT author.uuid, %(message)s, parent.uuid, coalesce(parent.expires_at, now() + %(ttl)s::interval)
  FROM author
  LEFT JOIN parent ON true
  WHERE %(parent_uuid)s::uuid IS NULL OR parent.uuid IS NOT NULL
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
