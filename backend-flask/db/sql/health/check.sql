-- health/check.sql: proves the database answers a query.
-- Returns: body (JSON object text).
SELECT json_build_object('success', true, 'ver', 1)::text AS body;
