-- activities/search.sql: live activities whose message contains a term, case-insensitively,
-- newest first, replies nested. A rare term is found through the trigram index, a common one by
-- walking activities_created_idx newest first until the page is full: which is cheaper depends
-- on the term, so this query is planned for its parameters on every call (lib/db.py reads the
-- line below).
-- plan: every call
-- Params: pattern (an ILIKE pattern, the term escaped), limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON array text), next_created_at, next_uuid (NULL on the last page).
WITH candidates AS (
  SELECT i.*
  FROM public.activity_items i
  WHERE i.message ILIKE %(pattern)s
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
) next ON (SELECT count(*) FROM candidates) > %(limit)s;
