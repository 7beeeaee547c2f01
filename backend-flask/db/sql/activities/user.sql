-- activities/user.sql: a user's profile and one page of their live top-level activities,
-- newest first, replies nested. No row when the handle is unknown.
-- Params: handle, limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON object text), next_created_at, next_uuid (NULL on the last page).
WITH profile AS (
  SELECT u.uuid, u.handle, u.display_name, u.bio,
         (SELECT count(*) FROM public.activities a
          WHERE a.user_uuid = u.uuid AND a.reply_to_activity_uuid IS NULL
            AND a.expires_at > now()) AS cruds_count
  FROM public.users u
  WHERE u.handle = %(handle)s
),
candidates AS (
  SELECT i.*
  FROM public.activity_items i
  WHERE i.handle = %(handle)s
    AND i.reply_to_activity_uuid IS NULL
    AND i.expires_at > now()
    AND (i.created_at, i.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
  ORDER BY i.created_at DESC, i.uuid DESC
  LIMIT %(limit)s + 1
),
page AS (
  SELECT * FROM candidates ORDER BY created_at DESC, uuid DESC LIMIT %(limit)s
)
SELECT json_build_object('profile', row_to_json(profile), 'activities', body.json)::text AS body,
       next.created_at AS next_created_at, next.uuid AS next_uuid
FROM profile
CROSS JOIN (
  SELECT coalesce(json_agg(item ORDER BY item.created_at DESC, item.uuid DESC), '[]') AS json
  FROM (SELECT p.*, public.activity_replies(p.uuid) AS replies FROM page p) item
) body
LEFT JOIN (
  SELECT created_at, uuid FROM page ORDER BY created_at, uuid LIMIT 1
) next ON (SELECT count(*) FROM candidates) > %(limit)s;
