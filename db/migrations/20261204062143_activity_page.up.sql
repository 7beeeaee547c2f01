-- db/migrations/20261204062143_activity_page.up.sql
-- activity_page: the one definition of a page of activities (each with its live replies, and the
-- next page's cursor) that every list query calls; activity_replies(), which no query called,
-- goes.
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

DROP FUNCTION public.activity_replies(uuid, integer);

-- One page of activities as the API shows it, the one definition every list query uses: the
-- activities whose uuids `candidates` lists, in that order (a list query's rows, at most
-- page_size + 1: a row past the page says there is a next one), each with its first live replies
-- (oldest first, at most 20; replies_count has the total); and the keyset cursor of the page's
-- last row when there is a next page. plpgsql, so its plan is kept for the session.
CREATE FUNCTION public.activity_page(candidates uuid[], page_size integer)
RETURNS TABLE (body json, next_created_at timestamptz, next_uuid uuid)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
  WITH page AS (
    SELECT c.n, i
    FROM unnest(candidates[1:page_size]) WITH ORDINALITY AS c(uuid, n)
    JOIN public.activity_items i ON i.uuid = c.uuid
  )
  SELECT
    (SELECT coalesce(json_agg(x.item ORDER BY x.n), '[]')
     FROM (
       SELECT p.n, (SELECT item FROM (SELECT (p.i).*, replies.list AS replies) item) AS item
       FROM page p
       CROSS JOIN LATERAL (
         SELECT coalesce(json_agg(reply ORDER BY reply.created_at, reply.uuid), '[]') AS list
         FROM (
           SELECT r.* FROM public.activity_items r
           WHERE r.reply_to_activity_uuid = (p.i).uuid AND r.expires_at > now()
           ORDER BY r.created_at, r.uuid
           LIMIT 20
         ) reply
       ) replies
     ) x),
    (last.i).created_at, (last.i).uuid
  FROM (SELECT) one
  LEFT JOIN page last ON last.n = page_size AND cardinality(candidates) > page_size;
END
$$;

GRANT EXECUTE ON FUNCTION public.activity_page(uuid[], integer) TO cruddur_app;
