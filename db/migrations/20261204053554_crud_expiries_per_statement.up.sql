-- db/migrations/20261204053554_crud_expiries_per_statement.up.sql
-- crud_expiries_per_statement: user_crud_expiries counts inserted and deleted cruds once per
-- statement, per user and period (transition tables), instead of once per row. In one
-- transaction each update of a row leaves a version that the next update of that row walks
-- past, so a bulk load that counted per row (one update per crud of the same user and period)
-- grew with the square of its rows. A past period whose last crud is deleted goes too: nothing
-- reads past periods, and the API never writes one. Updates of a crud's author, expiry or
-- parent (rare: the API never makes them) stay counted per row.
--
-- Run by bin/db-migrate in one transaction with its schema_migrations row: plain SQL, no
-- BEGIN/COMMIT. Once applied anywhere, never edit it: write a new migration.

DROP TRIGGER activities_count_crud_expiry ON public.activities;

CREATE OR REPLACE FUNCTION public.activities_count_crud_expiry() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.reply_to_activity_uuid IS NULL THEN
    UPDATE public.user_crud_expiries SET cruds = cruds - 1
    WHERE user_uuid = OLD.user_uuid AND expires_period = public.expiry_period(OLD.expires_at);
  END IF;
  IF NEW.reply_to_activity_uuid IS NULL THEN
    INSERT INTO public.user_crud_expiries AS e (user_uuid, expires_period, cruds)
    VALUES (NEW.user_uuid, public.expiry_period(NEW.expires_at), 1)
    ON CONFLICT (user_uuid, expires_period) DO UPDATE SET cruds = e.cruds + 1;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER activities_count_crud_expiry
  AFTER UPDATE OF user_uuid, expires_at, reply_to_activity_uuid ON public.activities
  FOR EACH ROW EXECUTE FUNCTION public.activities_count_crud_expiry();

CREATE FUNCTION public.activities_count_inserted_cruds() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.user_crud_expiries AS e (user_uuid, expires_period, cruds)
  SELECT user_uuid, public.expiry_period(expires_at), count(*)
  FROM inserted_activities
  WHERE reply_to_activity_uuid IS NULL
  GROUP BY 1, 2
  ORDER BY 1, 2  -- every statement locks rows in the same order: concurrent ones cannot deadlock
  ON CONFLICT (user_uuid, expires_period) DO UPDATE SET cruds = e.cruds + excluded.cruds;
  RETURN NULL;
END
$$;

CREATE TRIGGER activities_count_inserted_cruds
  AFTER INSERT ON public.activities
  REFERENCING NEW TABLE AS inserted_activities
  FOR EACH STATEMENT EXECUTE FUNCTION public.activities_count_inserted_cruds();

CREATE FUNCTION public.activities_count_deleted_cruds() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  WITH deleted AS (
    SELECT user_uuid, public.expiry_period(expires_at) AS expires_period, count(*) AS cruds
    FROM deleted_activities
    WHERE reply_to_activity_uuid IS NULL
    GROUP BY 1, 2
  ),
  emptied_past AS (
    DELETE FROM public.user_crud_expiries e
    USING deleted d
    WHERE e.user_uuid = d.user_uuid AND e.expires_period = d.expires_period
      AND e.cruds <= d.cruds AND e.expires_period < public.expiry_period(now())
  )
  UPDATE public.user_crud_expiries e SET cruds = greatest(e.cruds - d.cruds, 0)
  FROM deleted d
  WHERE e.user_uuid = d.user_uuid AND e.expires_period = d.expires_period
    AND NOT (e.cruds <= d.cruds AND e.expires_period < public.expiry_period(now()));
  RETURN NULL;
END
$$;

CREATE TRIGGER activities_count_deleted_cruds
  AFTER DELETE ON public.activities
  REFERENCING OLD TABLE AS deleted_activities
  FOR EACH STATEMENT EXECUTE FUNCTION public.activities_count_deleted_cruds();
