-- activities/home.sql: one page of the home feed: live top-level activities, newest first, each
-- with its first live replies (public.activity_page() builds the page).
-- Read per lifetime class (public.lifetime_classes()), so expired rows cost nothing to skip.
-- Keyset paging on (created_at, uuid); one row past the page tells whether there is a next one.
-- Params: limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON array text), next_created_at, next_uuid (NULL on the last page).
SELECT page.body::text, page.next_created_at, page.next_uuid
FROM public.activity_page(ARRAY(
  SELECT c.uuid
  FROM public.lifetime_classes() l
  CROSS JOIN LATERAL (
    SELECT a.uuid, a.created_at FROM public.activities a
    WHERE public.lifetime_class(a.created_at, a.expires_at) = l.class
      AND a.created_at > now() - l.longest
      AND a.reply_to_activity_uuid IS NULL
      AND a.expires_at > now()
      AND (a.created_at, a.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
    ORDER BY a.created_at DESC, a.uuid DESC
    LIMIT %(limit)s + 1
  ) c
  ORDER BY c.created_at DESC, c.uuid DESC
  LIMIT %(limit)s + 1
), %(limit)s) page;
