-- activities/home.sql: one page of the home feed: live top-level activities, newest first, each
-- with its first live replies (public.activity_page() builds the page).
-- Keyset paging on (created_at, uuid); one row past the page tells whether there is a next one.
-- Params: limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON array text), next_created_at, next_uuid (NULL on the last page).
SELECT page.body::text, page.next_created_at, page.next_uuid
FROM public.activity_page(ARRAY(
  SELECT a.uuid FROM public.activities a
  WHERE a.reply_to_activity_uuid IS NULL
    AND a.expires_at > now()
    AND (a.created_at, a.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
  ORDER BY a.created_at DESC, a.uuid DESC
  LIMIT %(limit)s + 1
), %(limit)s) page;
