-- Legacy data as the previous release (migrations 0000-0022) left it, generated set-wise. Every category is a
-- function of the row number, so the counts are exact and reproducible: 30 percent legacy RSVP and guest-side
-- values, 10 percent NULL company_id on the child tables that already have the column, 20 percent of clients
-- with drifted cached stats.
-- Linear in its size: each child row finds its client by a hash join on the client's number (the previous
-- version subscripted an array of every client id per row, so it cost guests x clients: over 15 minutes at 3M).
-- Parameters: %(guests)s, %(clients)s, %(companies)s, %(smoke_password_hash)s. (mod() instead of the modulo
-- operator, whose sign psycopg2 would read as a parameter.)
-- Each `--> table NAME` line starts a step that the sandbox runs and reports on its own (rows, seconds).

--> table companies
-- The clients' hash table (200,000 at 10M guests) in memory rather than spilled in batches to disk.
SET LOCAL work_mem = '256MB';
CREATE TEMP TABLE seed_companies ON COMMIT DROP AS
SELECT n, gen_random_uuid() AS id FROM generate_series(0, %(companies)s - 1) AS n;
INSERT INTO companies (id, name, slug)
SELECT id, 'Planner Co ' || n, 'planner-co-' || n FROM seed_companies;

--> table users
INSERT INTO users (id, name, email, email_verified, company_id, role)
SELECT 'user-' || c.n || '-' || u, 'Planner ' || c.n || '.' || u,
       'planner' || c.n || '.' || u || '@example.test', true, c.id,
       CASE WHEN u = 0 THEN 'owner' ELSE 'planner' END
FROM seed_companies c CROSS JOIN generate_series(0, 1) AS u;

--> table clients
CREATE TEMP TABLE seed_clients ON COMMIT DROP AS
SELECT s.n, gen_random_uuid() AS id, co.id AS company_id
FROM generate_series(0, %(clients)s - 1) AS s(n) JOIN seed_companies co ON co.n = mod(s.n, %(companies)s);
ANALYZE seed_clients;
INSERT INTO clients (id, company_id, partner1_first_name, partner1_last_name, partner2_first_name,
                     partner2_last_name, wedding_date, deleted_at)
SELECT id, company_id, 'Alex' || n, 'Smith', 'Sam' || n, 'Jones',
       DATE '2027-01-01' + mod(n, 700),
       CASE WHEN mod(n, 50) = 49 THEN now() - interval '30 days' END
FROM seed_clients ORDER BY n;

--> table guests
INSERT INTO guests (client_id, company_id, first_name, last_name, email, rsvp_status, guest_side, plus_one)
SELECT c.id,
       CASE WHEN mod(i, 10) = 5 THEN NULL ELSE c.company_id END,
       'Guest' || i, 'Family' || mod(i, 997), 'guest' || i || '@example.test',
       CASE mod(i, 10)
         WHEN 0 THEN 'confirmed' WHEN 1 THEN 'confirmed' WHEN 2 THEN 'declined' WHEN 3 THEN 'maybe'
         WHEN 4 THEN 'pending' WHEN 5 THEN 'pending' WHEN 6 THEN 'confirmed'
         ELSE (ARRAY['attending', 'accepted', 'yes', 'not_attending', 'no', 'tentative',
                     'unknown', '', 'YES', 'Maybe?'])[mod(i / 10, 10) + 1]
       END,
       CASE mod(i / 3, 10)
         WHEN 0 THEN 'partner1' WHEN 1 THEN 'partner2' WHEN 2 THEN 'mutual' WHEN 3 THEN NULL
         WHEN 4 THEN 'partner1' WHEN 5 THEN 'partner2' WHEN 6 THEN 'mutual'
         ELSE (ARRAY['bride', 'bride_side', 'groom', 'groom_side', 'both', 'common', 'shared'])
              [mod(i / 30, 7) + 1]
       END,
       mod(i, 4) = 0
FROM generate_series(0, %(guests)s - 1) AS i JOIN seed_clients c ON c.n = mod(i, %(clients)s);

--> table budget
INSERT INTO budget (client_id, company_id, category, item, estimated_cost, actual_cost)
SELECT c.id,
       CASE WHEN mod(j, 10) = 5 THEN NULL ELSE c.company_id END,
       (ARRAY['venue', 'catering', 'flowers', 'music', 'photo'])[mod(j, 5) + 1], 'Item ' || j,
       (mod(j, 40) + 1) * 125.50, CASE WHEN mod(j, 3) = 0 THEN (mod(j, 40) + 1) * 120 END
FROM generate_series(0, %(guests)s / 5 - 1) AS j JOIN seed_clients c ON c.n = mod(j, %(clients)s);

--> table events
INSERT INTO events (client_id, company_id, title, event_date, venue)
SELECT c.id,
       CASE WHEN mod(j, 10) = 5 THEN NULL ELSE c.company_id END,
       (ARRAY['Ceremony', 'Reception', 'Rehearsal dinner', 'Brunch'])[mod(j, 4) + 1],
       DATE '2027-01-01' + mod(j, 700), 'Venue ' || mod(j, 300)
FROM generate_series(0, %(guests)s / 10 - 1) AS j JOIN seed_clients c ON c.n = mod(j, %(clients)s);

--> table vendors
INSERT INTO vendors (client_id, company_id, name, category, contact_email)
SELECT c.id,
       CASE WHEN mod(j, 10) = 5 THEN NULL ELSE c.company_id END,
       'Vendor ' || j, (ARRAY['florist', 'caterer', 'band', 'photographer'])[mod(j, 4) + 1],
       'vendor' || j || '@example.test'
FROM generate_series(0, %(guests)s / 20 - 1) AS j JOIN seed_clients c ON c.n = mod(j, %(clients)s);

--> table hotels
INSERT INTO hotels (client_id, company_id, name, room_block)
SELECT c.id,
       CASE WHEN mod(j, 10) = 5 THEN NULL ELSE c.company_id END,
       'Hotel ' || j, mod(j, 40) + 5
FROM generate_series(0, greatest(%(guests)s / 100, 1) - 1) AS j JOIN seed_clients c ON c.n = mod(j, %(clients)s);

--> table gifts
INSERT INTO gifts (client_id, description, received_at)
SELECT c.id, 'Gift ' || j, now() - make_interval(days => mod(j, 200))
FROM generate_series(0, %(guests)s / 20 - 1) AS j JOIN seed_clients c ON c.n = mod(j, %(clients)s);

--> table timeline
INSERT INTO timeline (client_id, title, starts_at)
SELECT c.id, 'Milestone ' || j, now() + make_interval(days => mod(j, 400))
FROM generate_series(0, %(guests)s / 10 - 1) AS j JOIN seed_clients c ON c.n = mod(j, %(clients)s);

--> table documents
INSERT INTO documents (client_id, name, url)
SELECT c.id, 'Contract ' || j, 'https://files.example.test/doc/' || j
FROM generate_series(0, %(guests)s / 20 - 1) AS j JOIN seed_clients c ON c.n = mod(j, %(clients)s);

--> table advance_payments
INSERT INTO advance_payments (budget_id, client_id, amount, paid_at)
SELECT b.id, b.client_id, round(b.estimated_cost / 4, 2), DATE '2026-06-01' + mod(b.r::int, 150)
FROM (SELECT id, client_id, estimated_cost, row_number() OVER () AS r FROM budget) AS b
WHERE mod(b.r, 4) = 0;

--> table chatbot_conversations
INSERT INTO chatbot_conversations (company_id, client_id, user_id, title)
SELECT c.company_id, c.id, 'user-' || mod(c.n, %(companies)s) || '-0', 'Planning chat ' || c.n
FROM seed_clients c WHERE mod(c.n, 2) = 0;

--> table chatbot_messages
INSERT INTO chatbot_messages (conversation_id, role, content)
SELECT conv.id, CASE WHEN mod(m, 2) = 0 THEN 'user' ELSE 'assistant' END, 'Message ' || m
FROM chatbot_conversations conv CROSS JOIN generate_series(0, 3) AS m;

--> table clients (cached stats, then drift)
-- The cached stats as the app maintained them, then drift: 10 percent with too many guests counted,
-- 10 percent with a zero budget (soft-deleted clients are left alone, as the runbook's SQL does).
-- One UPDATE: each client gets one new row version.
UPDATE clients SET
  guest_count = coalesce(g.cnt, 0)
    + CASE WHEN mod(s.n, 10) = 3 AND clients.deleted_at IS NULL THEN mod(s.n, 7) + 1 ELSE 0 END,
  budget = CASE WHEN mod(s.n, 10) = 7 AND clients.deleted_at IS NULL THEN '0'
                ELSE coalesce(b.total, 0)::text END
FROM seed_clients s
LEFT JOIN (SELECT client_id, count(*)::int AS cnt FROM guests GROUP BY client_id) g ON g.client_id = s.id
LEFT JOIN (SELECT client_id, sum(estimated_cost) AS total FROM budget GROUP BY client_id) b
  ON b.client_id = s.id
WHERE clients.id = s.id;

--> table users (smoke account)
-- The smoke phase's account (Better Auth email/password), in the first company; its password hash is a
-- parameter, the password itself lives in the sandbox's 0600 smoke_password file.
INSERT INTO users (id, name, email, email_verified, company_id, role)
SELECT 'user-smoke', 'Smoke Tester', 'smoke@weddingflo.test', true, id, 'planner' FROM seed_companies WHERE n = 0;
INSERT INTO accounts (id, account_id, provider_id, user_id, password)
VALUES ('account-smoke', 'user-smoke', 'credential', 'user-smoke', %(smoke_password_hash)s);
