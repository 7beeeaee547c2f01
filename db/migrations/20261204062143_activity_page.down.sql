-- db/migrations/20261204062143_activity_page.down.sql: activity_replies() back, activity_page() gone.

DROP FUNCTION public.activity_page(uuid[], integer);

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

GRANT EXECUTE ON FUNCTION public.activity_replies(uuid, integer) TO cruddur_app;
