-- db/migrations/20261202015435_user_crud_expiries.down.sql
-- Undo user_crud_expiries: cruds_count counts the user's live cruds one by one again.

DROP INDEX public.activities_user_expiry_idx;
DROP TRIGGER activities_count_crud_expiry ON public.activities;
DROP FUNCTION public.activities_count_crud_expiry();
DROP TABLE public.user_crud_expiries;
DROP FUNCTION public.expiry_period(timestamptz);
