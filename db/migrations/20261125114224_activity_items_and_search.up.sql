-- db/migrations/20261125114224_activity_items_and_search.up.sql
-- activity_items_and_search: the view every list query reads (an activity as the API shows
-- it), the function that nests an activity's replies, and the trigram index that lets
-- /api/activities/search find a term without reading the whole table.
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX activities_message_trgm_idx
  ON public.activities USING gin (message gin_trgm_ops);

CREATE VIEW public.activity_items AS
SELECT a.uuid, u.display_name, u.handle, a.message,
       a.replies_count, a.reposts_count, a.likes_count,
       a.reply_to_activity_uuid, a.expires_at, a.created_at
FROM public.activities a
JOIN public.users u ON u.uuid = a.user_uuid;

CREATE FUNCTION public.activity_replies(activity_uuid uuid, max_replies integer DEFAULT 20)
RETURNS json LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(json_agg(r ORDER BY r.created_at, r.uuid), '[]')
  FROM (
    SELECT i.* FROM public.activity_items i
    WHERE i.reply_to_activity_uuid = activity_uuid AND i.expires_at > now()
    ORDER BY i.created_at, i.uuid
    LIMIT max_replies
  ) r
$$;
