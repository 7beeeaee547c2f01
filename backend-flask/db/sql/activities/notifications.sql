-- activities/notifications.sql: live replies by others to a user's activities, newest first.
-- Params: user_uuid, handle (the caller's), limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON array text), next_created_at, next_uuid (NULL on the last page).
WITH candidates AS (
  SELECT i.*
  FROM public.activity_items i
  JOIN public.activities parent ON parent.uuid = i.reply_to_activity_uuid
  WHERE parent.user_uuid = %(user_uuid)s::uuid
    AND i.handle <> %(handle)s
    AND i.expires_at > now()
    AND (i.created_at, i.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
  ORDER BY i.created_at DESC, i.uuid DESC
  LIMIT %(limit)s + 1
),
page AS (
  SELECT * FROM candidates ORDER BY created_at DESC, uuid DESC LIMIT %(limit)s
)
SELECT body.json::text AS body, next.created_at AS next_created_at, next.uuid AS next_uuid
FROM (
  SELECT coalesce(json_agg(item ORDER BY item.created_at DESC, item.uuid DESC), '[]') AS json
  FROM (SELECT p.*, public.activity_replies(p.uuid) AS replies FROM page p) item
) body
LEFT JOIN (
  SELECT created_at, uuid FROM page ORDER BY created_at, uuid LIMIT 1
) next ON (SELECT count(*) FROM candidates) > %(limit)s;
