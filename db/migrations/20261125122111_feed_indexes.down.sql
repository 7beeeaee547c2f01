-- db/migrations/20261125122111_feed_indexes.down.sql
-- Undo feed_indexes.

DROP INDEX public.activities_user_live_idx;
DROP INDEX public.activities_created_idx;
DROP INDEX public.activities_notifications_idx;
DROP TRIGGER activities_reply_to_user ON public.activities;
DROP FUNCTION public.activities_set_reply_to_user();
ALTER TABLE public.activities DROP COLUMN reply_to_user_uuid;
