-- activities/notifications.sql: live replies by others to the signed-in user's activities, newest
-- first, each with its own replies nested. reply_to_user_uuid (kept by a trigger) lets one index
-- range (activities_notifications_idx) serve the page, however much the user has posted. The user
-- is found by their Cognito sub in the same statement.
-- Params: cognito_user_id, limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON array text), next_created_at, next_uuid (NULL on the last page); no row
-- when no user has that cognito_user_id.
WITH caller AS (
  SELECT uuid FROM public.users WHERE cognito_user_id = %(cognito_user_id)s
),
candidates AS (
  -- the columns of public.activity_items, read from the table for its reply_to_user_uuid
  SELECT a.uuid, u.display_name, u.handle, a.message,
         a.replies_count, a.reposts_count, a.likes_count,
         a.reply_to_activity_uuid, a.expires_at, a.created_at
  FROM public.activities a
  JOIN public.users u ON u.uuid = a.user_uuid
  WHERE a.reply_to_user_uuid = (SELECT uuid FROM caller)
    AND a.user_uuid <> (SELECT uuid FROM caller)
    AND a.expires_at > now()
    AND (a.created_at, a.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
  ORDER BY a.created_at DESC, a.uuid DESC
  LIMIT %(limit)s + 1
),
page AS (
  SELECT * FROM candidates ORDER BY created_at DESC, uuid DESC LIMIT %(limit)s
)
SELECT body.json::text AS body, next.created_at AS next_created_at, next.uuid AS next_uuid
FROM (
  SELECT coalesce(json_agg(item ORDER BY item.created_at DESC, item.uuid DESC), '[]') AS json
  FROM (
    SELECT p.*, r.replies
    FROM page p
    LEFT JOIN LATERAL (
      SELECT coalesce(json_agg(reply ORDER BY reply.created_at, reply.uuid), '[]') AS replies
      FROM (
        SELECT ri.* FROM public.activity_items ri
        WHERE ri.reply_to_activity_uuid = p.uuid AND ri.expires_at > now()
        ORDER BY ri.created_at, ri.uuid
        LIMIT 20
      ) reply
    ) r ON true
  ) item
) body
LEFT JOIN (
  SELECT created_at, uuid FROM page ORDER BY created_at, uuid LIMIT 1
) next ON (SELECT count(*) FROM candidates) > %(limit)s
WHERE EXISTS (SELECT FROM caller);
