-- Run as the owner (postgres) in the new weddingflo database: who may use what it creates.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role, weddingflo_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO authenticated, service_role, weddingflo_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO authenticated, service_role, weddingflo_app;
