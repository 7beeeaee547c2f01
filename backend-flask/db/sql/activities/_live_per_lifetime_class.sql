-- activities/_live_per_lifetime_class.sql: a part of home.sql, user.sql and notifications.sql
-- (lib/queries.py puts it where a query says `{{ activities/_live_per_lifetime_class | condition }}`,
-- the condition at `{{ where }}`): the uuids of the live activities that meet the condition, newest
-- first, one past the page, read per lifetime class (public.lifetime_classes(),
-- docs/decisions/0015-lifetime-classes.md): per class, the rows created within its longest life,
-- at most a page of them on an index that leads with the class, so expired rows cost nothing to
-- skip. Params: limit, cursor_created_at, cursor_uuid.
SELECT c.uuid
FROM public.lifetime_classes() l
CROSS JOIN LATERAL (
  SELECT a.uuid, a.created_at FROM public.activities a
  WHERE public.lifetime_class(a.created_at, a.expires_at) = l.class
    AND a.created_at > now() - l.longest
    AND {{ where }}
    AND a.expires_at > now()
    AND (a.created_at, a.uuid) < (%(cursor_created_at)s::timestamptz, %(cursor_uuid)s::uuid)
  ORDER BY a.created_at DESC, a.uuid DESC
  LIMIT %(limit)s + 1
) c
ORDER BY c.created_at DESC, c.uuid DESC
LIMIT %(limit)s + 1
