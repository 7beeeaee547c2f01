-- users/short.sql: the short form of a user, by handle. No row when unknown.
-- Params: handle.
-- Returns: body (JSON object text).
SELECT row_to_json(u)::text AS body
FROM (SELECT uuid, handle, display_name FROM public.users WHERE lower(handle) = lower(%(handle)s)) u;
