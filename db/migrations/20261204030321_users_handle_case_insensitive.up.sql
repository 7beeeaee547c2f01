-- db/migrations/20261204030321_users_handle_case_insensitive.up.sql
-- users_handle_case_insensitive: a handle is one name whatever its case. `ChrisFenton` and
-- `chrisfenton` are the same handle: the unique index is on lower(handle), and every lookup by
-- handle (the API's db/sql, the post-confirmation Lambda) compares lower(handle) = lower($1),
-- which this index serves. The stored spelling is kept and shown as the user chose it.
-- It replaces users_handle_key (UNIQUE (handle)): the new index is stricter and serves the same
-- lookups, so keeping both would only cost a second index on every write.
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

-- Handles that differ only in case cannot both stay: name them, and change nothing.
DO $$
DECLARE
  clashes text;
BEGIN
  SELECT string_agg(same, '; ' ORDER BY same COLLATE "C") INTO clashes
  FROM (SELECT string_agg(quote_literal(handle), ', ' ORDER BY handle COLLATE "C") AS same
        FROM public.users GROUP BY lower(handle) HAVING count(*) > 1) c;
  IF clashes IS NOT NULL THEN
    RAISE EXCEPTION 'handles that differ only in case: %', clashes
      USING HINT = 'rename all but one of each (UPDATE public.users SET handle = ...), then migrate again';
  END IF;
END
$$;

CREATE UNIQUE INDEX users_handle_lower_key ON public.users (lower(handle));
ALTER TABLE public.users DROP CONSTRAINT users_handle_key;
