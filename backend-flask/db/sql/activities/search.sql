-- activities/search.sql: live activities whose message contains a term, case-insensitively,
-- newest first, replies nested (public.activity_page()). A rare term is found through the trigram
-- index, a common one by walking activities_created_idx newest first until the page is full:
-- which is cheaper depends on the term, so this query is planned for its parameters on every
-- call (lib/queries.py reads the line below).
-- plan: every call
-- Params: pattern (an ILIKE pattern, the term escaped), limit, cursor_created_at, cursor_uuid.
-- Returns: body (JSON array text), next_created_at, next_uuid (NULL on the last page).
SELECT page.body::text, page.next_created_at, page.next_uuid
FROM public.activity_page(ARRAY(
  SELECT a.uuid FROM public.activities a
  WHERE a.message ILIKE %(pattern)s
    AND a.expires_at > now()
    AND (a.created_at, a.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
  ORDER BY a.created_at DESC, a.uuid DESC
  LIMIT %(limit)s + 1
), %(limit)s) page;
