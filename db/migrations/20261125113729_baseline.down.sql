-- db/migrations/20261125113729_baseline.down.sql
-- Undo baseline: drop every table it made, with their data (bin/db-rollback; on prod only with
-- --force-prod).

DROP TABLE public.activities;
DROP TABLE public.users;
