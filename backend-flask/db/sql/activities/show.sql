-- activities/show.sql: one live activity of a user and one page of its live replies, oldest
-- first, each with its own replies nested (public.activity_page()). No row when the activity is
-- unknown, expired, or not that user's.
-- Params: handle, uuid, limit, cursor_created_at, cursor_uuid (replies after the cursor).
-- Returns: body (JSON object text), next_created_at, next_uuid (NULL on the last page).
WITH activity AS (
  SELECT i.*
  FROM public.activity_items i
  WHERE i.uuid = %(uuid)s::uuid AND lower(i.handle) = lower(%(handle)s) AND i.expires_at > now()
)
SELECT json_build_object('activity', row_to_json(activity), 'replies', page.body)::text AS body,
       page.next_created_at, page.next_uuid
FROM activity
CROSS JOIN public.activity_page(ARRAY(
  SELECT a.uuid FROM public.activities a
  WHERE a.reply_to_activity_uuid = %(uuid)s::uuid
    AND a.expires_at > now()
    AND (a.created_at, a.uuid) > (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
  ORDER BY a.created_at, a.uuid
  LIMIT %(limit)s + 1
), %(limit)s) page;
