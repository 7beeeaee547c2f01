-- db/migrations/20261125113730_add_users_bio.down.sql
-- Undo add_users_bio: drop the column (and the bios in it).

ALTER TABLE public.users DROP COLUMN bio;
