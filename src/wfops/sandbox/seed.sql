-- Legacy data as the previous release (migrations 0000-0022) left it, generated set-wise so that
-- a million guests take seconds, not hours. Every category is a function of the row number, so the
-- counts are exact and reproducible: 30 percent legacy RSVP and guest-side values, 10 percent NULL company_id on
-- the child tables that already have the column, 20 percent of clients with drifted cached stats.
-- Parameters: %(guests)s, %(clients)s, %(companies)s. (mod() instead of the modulo operator, whose sign psycopg2 would read as a parameter.)

CREATE TEMP TABLE seed_companies ON COMMIT DROP AS
SELECT n, gen_random_uuid() AS id FROM generate_series(0, %(companies)s - 1) AS n;

INSERT INTO companies (id, name, slug)
SELECT id, 'Planner Co ' || n, 'planner-co-' || n FROM seed_companies;

INSERT INTO users (id, name, email, email_verified, company_id, role)
SELECT 'user-' || c.n || '-' || u, 'Planner ' || c.n || '.' || u,
       'planner' || c.n || '.' || u || '@example.test', true, c.id,
       CASE WHEN u = 0 THEN 'owner' ELSE 'planner' END
FROM seed_companies c CROSS JOIN generate_series(0, 1) AS u;

CREATE TEMP TABLE seed_clients ON COMMIT DROP AS
SELECT n, gen_random_uuid() AS id,
       (SELECT id FROM seed_companies WHERE seed_companies.n = mod(s.n, %(companies)s)) AS company_id
FROM generate_series(0, %(clients)s - 1) AS s(n);

INSERT INTO clients (id, company_id, partner1_first_name, partner1_last_name, partner2_first_name,
                     partner2_last_name, wedding_date, deleted_at)
SELECT id, company_id, 'Alex' || n, 'Smith', 'Sam' || n, 'Jones',
       DATE '2027-01-01' + mod(n, 700),
       CASE WHEN mod(n, 50) = 49 THEN now() - interval '30 days' END
FROM seed_clients;

CREATE TEMP TABLE seed_client_ids ON COMMIT DROP AS
SELECT array_agg(id ORDER BY n) AS ids, array_agg(company_id ORDER BY n) AS companies FROM seed_clients;

INSERT INTO guests (client_id, company_id, first_name, last_name, email, rsvp_status, guest_side, plus_one)
SELECT ids[mod(i, %(clients)s) + 1],
       CASE WHEN mod(i, 10) = 5 THEN NULL ELSE companies[mod(i, %(clients)s) + 1] END,
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
FROM seed_client_ids, generate_series(0, %(guests)s - 1) AS i;

INSERT INTO budget (client_id, company_id, category, item, estimated_cost, actual_cost)
SELECT ids[mod(j, %(clients)s) + 1],
       CASE WHEN mod(j, 10) = 5 THEN NULL ELSE companies[mod(j, %(clients)s) + 1] END,
       (ARRAY['venue', 'catering', 'flowers', 'music', 'photo'])[mod(j, 5) + 1], 'Item ' || j,
       (mod(j, 40) + 1) * 125.50, CASE WHEN mod(j, 3) = 0 THEN (mod(j, 40) + 1) * 120 END
FROM seed_client_ids, generate_series(0, %(guests)s / 5 - 1) AS j;

INSERT INTO events (client_id, company_id, title, event_date, venue)
SELECT ids[mod(j, %(clients)s) + 1],
       CASE WHEN mod(j, 10) = 5 THEN NULL ELSE companies[mod(j, %(clients)s) + 1] END,
       (ARRAY['Ceremony', 'Reception', 'Rehearsal dinner', 'Brunch'])[mod(j, 4) + 1],
       DATE '2027-01-01' + mod(j, 700), 'Venue ' || mod(j, 300)
FROM seed_client_ids, generate_series(0, %(guests)s / 10 - 1) AS j;

INSERT INTO vendors (client_id, company_id, name, category, contact_email)
SELECT ids[mod(j, %(clients)s) + 1],
       CASE WHEN mod(j, 10) = 5 THEN NULL ELSE companies[mod(j, %(clients)s) + 1] END,
       'Vendor ' || j, (ARRAY['florist', 'caterer', 'band', 'photographer'])[mod(j, 4) + 1],
       'vendor' || j || '@example.test'
FROM seed_client_ids, generate_series(0, %(guests)s / 20 - 1) AS j;

INSERT INTO hotels (client_id, company_id, name, room_block)
SELECT ids[mod(j, %(clients)s) + 1],
       CASE WHEN mod(j, 10) = 5 THEN NULL ELSE companies[mod(j, %(clients)s) + 1] END,
       'Hotel ' || j, mod(j, 40) + 5
FROM seed_client_ids, generate_series(0, greatest(%(guests)s / 100, 1) - 1) AS j;

INSERT INTO gifts (client_id, description, received_at)
SELECT ids[mod(j, %(clients)s) + 1], 'Gift ' || j, now() - make_interval(days => mod(j, 200))
FROM seed_client_ids, generate_series(0, %(guests)s / 20 - 1) AS j;

INSERT INTO timeline (client_id, title, starts_at)
SELECT ids[mod(j, %(clients)s) + 1], 'Milestone ' || j, now() + make_interval(days => mod(j, 400))
FROM seed_client_ids, generate_series(0, %(guests)s / 10 - 1) AS j;

INSERT INTO documents (client_id, name, url)
SELECT ids[mod(j, %(clients)s) + 1], 'Contract ' || j, 'https://files.example.test/doc/' || j
FROM seed_client_ids, generate_series(0, %(guests)s / 20 - 1) AS j;

INSERT INTO advance_payments (budget_id, client_id, amount, paid_at)
SELECT b.id, b.client_id, round(b.estimated_cost / 4, 2), DATE '2026-06-01' + mod(b.r::int, 150)
FROM (SELECT id, client_id, estimated_cost, row_number() OVER () AS r FROM budget) AS b
WHERE mod(b.r, 4) = 0;

INSERT INTO chatbot_conversations (company_id, client_id, user_id, title)
SELECT c.company_id, c.id, 'user-' || mod(c.n, %(companies)s) || '-0', 'Planning chat ' || c.n
FROM seed_clients c WHERE mod(c.n, 2) = 0;

INSERT INTO chatbot_messages (conversation_id, role, content)
SELECT conv.id, CASE WHEN mod(m, 2) = 0 THEN 'user' ELSE 'assistant' END, 'Message ' || m
FROM chatbot_conversations conv CROSS JOIN generate_series(0, 3) AS m;

-- The cached stats as the app maintained them, then drift: 10 percent with too many guests counted,
-- 10 percent with a zero budget (soft-deleted clients are left alone, as the runbook's SQL does).
UPDATE clients SET
  guest_count = coalesce(g.cnt, 0),
  budget = coalesce(b.total, 0)::text
FROM seed_clients s
LEFT JOIN (SELECT client_id, count(*)::int AS cnt FROM guests GROUP BY client_id) g ON g.client_id = s.id
LEFT JOIN (SELECT client_id, sum(estimated_cost) AS total FROM budget GROUP BY client_id) b
  ON b.client_id = s.id
WHERE clients.id = s.id;

UPDATE clients SET guest_count = clients.guest_count + mod(s.n, 7) + 1
FROM seed_clients s WHERE clients.id = s.id AND mod(s.n, 10) = 3 AND clients.deleted_at IS NULL;

UPDATE clients SET budget = '0'
FROM seed_clients s WHERE clients.id = s.id AND mod(s.n, 10) = 7 AND clients.deleted_at IS NULL;

-- The smoke phase's account (Better Auth email/password), in the first company; its password hash is a
-- parameter, the password itself lives in the sandbox's 0600 smoke_password file.
INSERT INTO users (id, name, email, email_verified, company_id, role)
SELECT 'user-smoke', 'Smoke Tester', 'smoke@weddingflo.test', true, id, 'planner' FROM seed_companies WHERE n = 0;

INSERT INTO accounts (id, account_id, provider_id, user_id, password)
VALUES ('account-smoke', 'user-smoke', 'credential', 'user-smoke', %(smoke_password_hash)s);
