-- activities/user.sql: a user's profile (the view user_profiles) and one page of their live
-- top-level activities, newest first, replies nested. No row when the handle is unknown.
-- Params: handle, limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON object text), next_created_at, next_uuid (NULL on the last page).
WITH profile AS (
  SELECT * FROM public.user_profiles WHERE lower(handle) = lower(%(handle)s)
),
candidates AS (
  -- the columns of public.activity_items. The user is a value here (the subquery), not a join,
  -- so the scan of activities_user_live_idx comes out newest first and stops after the page
  -- instead of reading all the user's activities and sorting them.
  SELECT a.uuid, p.display_name, p.handle, a.message,
         a.replies_count, a.reposts_count, a.likes_count,
         a.reply_to_activity_uuid, a.expires_at, a.created_at
  FROM (
    SELECT * FROM public.activities a
    WHERE a.user_uuid = (SELECT uuid FROM profile)
      AND a.reply_to_activity_uuid IS NULL
      AND a.expires_at > now()
      AND (a.created_at, a.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
    ORDER BY a.created_at DESC, a.uuid DESC
    LIMIT %(limit)s + 1
  ) a
  CROSS JOIN profile p
),
page AS (
  SELECT * FROM candidates ORDER BY created_at DESC, uuid DESC LIMIT %(limit)s
)
SELECT json_build_object('profile', row_to_json(profile), 'activities', body.json)::text AS body,
       next.created_at AS next_created_at, next.uuid AS next_uuid
FROM profile
CROSS JOIN (
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
