-- db/migrations/20261204030321_users_handle_case_insensitive.down.sql
-- Undo users_handle_case_insensitive: handles unique as spelled again (UNIQUE (handle)), the
-- lower(handle) index gone. Every handle that was unique ignoring case is unique as spelled.

ALTER TABLE public.users ADD CONSTRAINT users_handle_key UNIQUE (handle);
DROP INDEX public.users_handle_lower_key;
