-- activities/home.sql: one page of the home feed: live top-level activities, newest first, each
-- with its first live replies (public.activity_page() builds the page).
-- Read per lifetime class (the part activities/_live_per_lifetime_class), so expired rows cost
-- nothing to skip.
-- Keyset paging on (created_at, uuid); one row past the page tells whether there is a next one.
-- Params: limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON array text), next_created_at, next_uuid (NULL on the last page).
SELECT page.body::text, page.next_created_at, page.next_uuid
FROM public.activity_page(ARRAY(
  {{ activities/_live_per_lifetime_class | a.reply_to_activity_uuid IS NULL }}
), %(limit)s) page;
