-- users/by_cognito_user_id.sql: the signed-in caller, by the `sub` of their Cognito token.
-- Params: cognito_user_id.
-- Returns: uuid, handle (no row for an unknown user).
SELECT uuid, handle FROM public.users WHERE cognito_user_id = %(cognito_user_id)s;
