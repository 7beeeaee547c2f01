-- db/migrations/20261125114224_activity_items_and_search.down.sql
-- Undo activity_items_and_search (the pg_trgm extension stays: other objects may use it).

DROP FUNCTION public.activity_replies(uuid, integer);
DROP VIEW public.activity_items;
DROP INDEX public.activities_message_trgm_idx;
