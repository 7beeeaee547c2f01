-- activities/show.sql: one live activity of a user and one page of its live replies, oldest first.
-- No row when the activity is unknown, expired, or not that user's.
-- Params: handle, uuid, limit, cursor_created_at, cursor_uuid (replies after the cursor).
-- Returns: body (JSON object text), next_created_at, next_uuid (NULL on the last page).
WITH activity AS (
  SELECT i.*
  FROM public.activity_items i
  WHERE i.uuid = %(uuid)s::uuid AND lower(i.handle) = lower(%(handle)s) AND i.expires_at > now()
),
candidates AS (
  SELECT i.*
  FROM public.activity_items i
  WHERE i.reply_to_activity_uuid = %(uuid)s::uuid
    AND i.expires_at > now()
    AND (i.created_at, i.uuid) > (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
  ORDER BY i.created_at, i.uuid
  LIMIT %(limit)s + 1
),
page AS (
  SELECT * FROM candidates ORDER BY created_at, uuid LIMIT %(limit)s
)
SELECT json_build_object('activity', row_to_json(activity), 'replies', body.json)::text AS body,
       next.created_at AS next_created_at, next.uuid AS next_uuid
FROM activity
CROSS JOIN (
  SELECT coalesce(json_agg(item ORDER BY item.created_at, item.uuid), '[]') AS json
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
  SELECT created_at, uuid FROM page ORDER BY created_at DESC, uuid DESC LIMIT 1
) next ON (SELECT count(*) FROM candidates) > %(limit)s;
