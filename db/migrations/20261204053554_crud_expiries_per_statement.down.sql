-- db/migrations/20261204053554_crud_expiries_per_statement.down.sql
-- Undo crud_expiries_per_statement: every inserted, deleted or updated crud is counted per row
-- again.

DROP TRIGGER activities_count_deleted_cruds ON public.activities;
DROP FUNCTION public.activities_count_deleted_cruds();
DROP TRIGGER activities_count_inserted_cruds ON public.activities;
DROP FUNCTION public.activities_count_inserted_cruds();
DROP TRIGGER activities_count_crud_expiry ON public.activities;

CREATE OR REPLACE FUNCTION public.activities_count_crud_expiry() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.reply_to_activity_uuid IS NULL THEN
    UPDATE public.user_crud_expiries SET cruds = cruds - 1
    WHERE user_uuid = OLD.user_uuid AND expires_period = public.expiry_period(OLD.expires_at);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.reply_to_activity_uuid IS NULL THEN
    INSERT INTO public.user_crud_expiries AS e (user_uuid, expires_period, cruds)
    VALUES (NEW.user_uuid, public.expiry_period(NEW.expires_at), 1)
    ON CONFLICT (user_uuid, expires_period) DO UPDATE SET cruds = e.cruds + 1;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER activities_count_crud_expiry
  AFTER INSERT OR DELETE OR UPDATE OF user_uuid, expires_at, reply_to_activity_uuid
  ON public.activities
  FOR EACH ROW EXECUTE FUNCTION public.activities_count_crud_expiry();
