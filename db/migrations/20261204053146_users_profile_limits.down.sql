-- db/migrations/20261204053146_users_profile_limits.down.sql
-- Undo users_profile_limits: no profile limits in the database, cruddur_app may update every
-- column of users again, no user_profiles view.

DROP VIEW public.user_profiles;
REVOKE UPDATE ON public.users FROM cruddur_app;
GRANT UPDATE ON public.users TO cruddur_app;
ALTER TABLE public.users DROP CONSTRAINT users_bio_length, DROP CONSTRAINT users_display_name_length;
