-- activities/home.sql: one page of the home feed, newest first.
-- Top-level live activities with their authors and their live replies (oldest first,
-- at most 20; replies_count has the total). Keyset paging on (created_at, uuid):
-- one row past the page tells whether there is a next one.
-- Params: limit, before_created_at, before_uuid.
-- Returns: body (JSON array text), next_created_at, next_uuid (NULL on the last page).
WITH candidates AS (
  SELECT a.uuid, a.user_uuid, a.message, a.replies_count, a.reposts_count, a.likes_count,
         a.reply_to_activity_uuid, a.expires_at, a.created_at
  FROM public.activities a
  WHERE a.reply_to_activity_uuid IS NULL
    AND a.expires_at > now()
    AND (a.created_at, a.uuid) < (%(before_created_at)s::timestamptz, %(before_uuid)s::uuid)
  ORDER BY a.created_at DESC, a.uuid DESC
  LIMIT %(limit)s + 1
),
page AS (
  SELECT * FROM candidates ORDER BY created_at DESC, uuid DESC LIMIT %(limit)s
),
items AS (
  SELECT p.uuid, u.display_name, u.handle, p.message,
         p.replies_count, p.reposts_count, p.likes_count,
         p.reply_to_activity_uuid, p.expires_at, p.created_at,
         r.replies
  FROM page p
  JOIN public.users u ON u.uuid = p.user_uuid
  LEFT JOIN LATERAL (
    SELECT coalesce(json_agg(reply ORDER BY reply.created_at, reply.uuid), '[]') AS replies
    FROM (
      SELECT ra.uuid, ru.display_name, ru.handle, ra.message,
             ra.replies_count, ra.reposts_count, ra.likes_count,
             ra.reply_to_activity_uuid, ra.expires_at, ra.created_at
      FROM public.activities ra
      JOIN public.users ru ON ru.uuid = ra.user_uuid
      WHERE ra.reply_to_activity_uuid = p.uuid
        AND ra.expires_at > now()
      ORDER BY ra.created_at, ra.uuid
      LIMIT 20
    ) reply
  ) r ON true
),
last_item AS (
  SELECT created_at, uuid FROM page ORDER BY created_at, uuid LIMIT 1
)
SELECT
  (SELECT coalesce(json_agg(items ORDER BY items.created_at DESC, items.uuid DESC), '[]')::text
   FROM items) AS body,
  l.created_at AS next_created_at,
  l.uuid AS next_uuid
FROM (SELECT 1) one
LEFT JOIN last_item l ON (SELECT count(*) FROM candidates) > %(limit)s;
