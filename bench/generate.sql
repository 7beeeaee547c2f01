-- bench/generate.sql: the benchmark's data, made in SQL on a database loaded from db/schema.sql.
-- Run by tools/bench.py after `SET bench.activities = N` (how many activities to make), as a
-- superuser: it loads with triggers and foreign-key checks off (session_replication_role) and
-- fills in what the triggers would (reply_to_user_uuid, user_crud_expiries) itself, the data
-- being right by construction; that makes a million rows in seconds.
-- With `SET bench.live = L` as well, a mostly expired table: the same activities, all expired
-- (each with the longest of the app's ttls shorter than its age; one younger than an hour
-- sooner) but L cruds spread over the 30 days, and their replies, with a 30-day ttl: what the
-- list queries meet when the purge has not run.
--
-- 1,000 users (user1 ... user1000; the Cognito `sub` of userK is bench-sub-K), and N activities
-- written over the last 30 days, inserted in time order as a live table grows:
--   - 80% top-level cruds, 20% replies to an earlier crud (the reply expires with its parent,
--     and the parent's replies_count is right);
--   - authors drawn as on a real site, a few writing much of it: user k+1 is drawn as
--     floor(1000 * u^3) for a uniform u, so the busiest user writes about 10% of the activities
--     (a full first page of their own even at 1,000) and half of everything comes from the
--     busiest eighth of the users;
--   - a ttl per crud as the app offers them (30 days 35%, 7 days 25%, 3 days 15%, 1 day 10%,
--     12 hours 7%, 3 hours 5%, 1 hour 3%): about 45% of the activities are still live, and
--     expired ones sit between live ones all the way down the feed;
--   - messages of 4 to 14 words from a 200-word vocabulary: a common word such as "coffee"
--     is in about 4% of them, the way a popular term is; "aurora", outside the vocabulary, ends
--     2 of the 20,000 messages, so about 1 activity in 10,000 has it, the way a rare term is.

SET client_min_messages = warning;
SET session_replication_role = replica;

INSERT INTO public.users (display_name, email, handle, cognito_user_id)
SELECT 'Bench User ' || k, 'user' || k || '@bench.example', 'user' || k, 'bench-sub-' || k
FROM generate_series(1, 1000) AS k;

CREATE TEMP TABLE bench_users AS
SELECT row_number() OVER (ORDER BY handle) - 1 AS k, uuid FROM public.users;
CREATE UNIQUE INDEX ON bench_users (k);

-- The vocabulary and 20,000 messages made from it.
CREATE TEMP TABLE bench_words AS
SELECT string_to_array(
  'the a and to of in is it you that for on with this my at be have just so but not are was all '
  'coffee morning today night week weekend code deploy cloud bug fix test data api server lambda '
  'postgres python flask react docker bucket cognito token feed crud reply like share post love '
  'great good bad new old big small fast slow happy tired busy ready done again still never always '
  'team meeting lunch dinner breakfast walk run gym music movie book game park city home office '
  'rain sun snow cold hot wind sky tea cake pizza bread soup salad apple orange banana garden dog '
  'cat bird fish tree flower river mountain beach road car bike train plane trip travel friend '
  'family mom dad kid baby party birthday holiday summer winter spring autumn monday friday '
  'learning building shipping reading writing thinking talking watching playing cooking sleeping '
  'finally really maybe probably totally literally honestly seriously actually basically why how '
  'what when where who best worst first last next every some many few more less most very too '
  'here there now then soon later early late up down out over under again together alone',
  ' ') AS words;

CREATE TEMP TABLE bench_messages AS
SELECT m, array_to_string(ARRAY(
         SELECT w.words[1 + floor(random() * cardinality(w.words))::int]
         FROM generate_series(1, 4 + (m * 7919) % 11)  -- refers to m: new words for each message
       ), ' ') AS message
FROM generate_series(0, 19999) AS m, bench_words w;
UPDATE bench_messages SET message = message || ' aurora' WHERE m % 10000 = 0;
CREATE UNIQUE INDEX ON bench_messages (m);

-- The top-level cruds, oldest first (n = 1 is 30 days old), with their ttl.
CREATE TEMP TABLE bench_top AS
SELECT n, gen_random_uuid() AS uuid,
       floor(1000 * power(random(), 3))::int AS author,
       floor(random() * 20000)::int AS m,
       now() - interval '30 days' * ((t.total - n + random()) / t.total) AS created_at,
       (ARRAY['30 days', '7 days', '3 days', '1 day', '12 hours', '3 hours', '1 hour']::interval[])[
         CASE WHEN r < 0.35 THEN 1 WHEN r < 0.60 THEN 2 WHEN r < 0.75 THEN 3 WHEN r < 0.85 THEN 4
              WHEN r < 0.92 THEN 5 WHEN r < 0.97 THEN 6 ELSE 7 END] AS ttl
FROM (SELECT greatest(1, round(current_setting('bench.activities')::bigint * 0.8))::int AS total) t,
     LATERAL (SELECT n, random() AS r FROM generate_series(1, t.total) AS n) g;
CREATE UNIQUE INDEX ON bench_top (n);

UPDATE bench_top t
SET ttl = CASE WHEN t.n % s.spacing = s.spacing / 2 THEN interval '30 days'
               ELSE coalesce((SELECT max(x) FROM unnest(ARRAY['7 days', '3 days', '1 day', '12 hours',
                                                              '3 hours', '1 hour']::interval[]) x
                              WHERE x < now() - t.created_at),
                             (now() - t.created_at) * random()) END
FROM (SELECT greatest(1, count(*) / nullif(current_setting('bench.live', true), '')::int) AS spacing
      FROM bench_top) s
WHERE nullif(current_setting('bench.live', true), '') IS NOT NULL;

-- The replies: each to a crud picked at random, written within two days of it (never in the
-- future), expiring with it.
CREATE TEMP TABLE bench_replies AS
SELECT gen_random_uuid() AS uuid, p.uuid AS parent_uuid, p.author AS parent_author,
       floor(1000 * power(random(), 3))::int AS author,
       floor(random() * 20000)::int AS m,
       p.created_at + least(now() - p.created_at, interval '2 days') * random() AS created_at,
       p.created_at + p.ttl AS expires_at
FROM (SELECT current_setting('bench.activities')::bigint
             - greatest(1, round(current_setting('bench.activities')::bigint * 0.8))::int AS total,
             greatest(1, round(current_setting('bench.activities')::bigint * 0.8))::int AS tops) t,
     LATERAL (SELECT 1 + floor(random() * t.tops)::int AS pick
              FROM generate_series(1, t.total)) picks
JOIN bench_top p ON p.n = picks.pick;

INSERT INTO public.activities (uuid, user_uuid, message, replies_count, reply_to_activity_uuid,
                               expires_at, created_at, reply_to_user_uuid)
SELECT a.uuid, u.uuid, msg.message, a.replies_count, a.reply_to, a.expires_at, a.created_at,
       pu.uuid
FROM (
  SELECT t.uuid, t.author, t.m, coalesce(c.n, 0) AS replies_count, NULL::uuid AS reply_to,
         NULL::int AS parent_author, t.created_at + t.ttl AS expires_at, t.created_at
  FROM bench_top t
  LEFT JOIN (SELECT parent_uuid, count(*)::int AS n FROM bench_replies GROUP BY parent_uuid) c
    ON c.parent_uuid = t.uuid
  UNION ALL
  SELECT r.uuid, r.author, r.m, 0, r.parent_uuid, r.parent_author, r.expires_at, r.created_at
  FROM bench_replies r
) a
JOIN bench_users u ON u.k = a.author
LEFT JOIN bench_users pu ON pu.k = a.parent_author
JOIN bench_messages msg ON msg.m = a.m
ORDER BY a.created_at;

-- What the trigger keeps for each crud inserted: its author's count for its period of expiry.
INSERT INTO public.user_crud_expiries (user_uuid, expires_period, cruds)
SELECT user_uuid, public.expiry_period(expires_at), count(*)
FROM public.activities
WHERE reply_to_activity_uuid IS NULL
GROUP BY 1, 2;

DROP TABLE bench_replies, bench_top, bench_messages, bench_words, bench_users;
RESET session_replication_role;
