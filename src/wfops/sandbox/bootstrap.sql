-- Supabase-like roles for the sandbox, run once by the cluster's superuser (supabase_admin).
-- anon/authenticated: NOLOGIN and subject to RLS; service_role: NOLOGIN, BYPASSRLS;
-- postgres: the owner/ops login role that, like Supabase's, is not a superuser but bypasses RLS;
-- weddingflo_app: the app's runtime login role, subject to RLS.
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE postgres LOGIN CREATEDB CREATEROLE BYPASSRLS PASSWORD %(ops_password)s;
CREATE ROLE weddingflo_app LOGIN NOBYPASSRLS PASSWORD %(app_password)s;
GRANT anon, authenticated, service_role TO postgres;
GRANT authenticated TO weddingflo_app;
-- The owner may act as the app's role (SET ROLE) for the smoke phase's tenant-isolation checks.
GRANT weddingflo_app TO postgres;
