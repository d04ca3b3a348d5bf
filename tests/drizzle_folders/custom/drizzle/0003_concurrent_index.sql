-- Custom SQL migration file, put your code below! --
-- The ledger is large and written all day: build its index without blocking writes. CONCURRENTLY cannot run in a
-- transaction, so this migration ends Drizzle's transaction first and opens a new one for the rest.
COMMIT;--> statement-breakpoint
CREATE INDEX CONCURRENTLY IF NOT EXISTS "ledger_account_id_idx" ON "ledger" ("account_id");--> statement-breakpoint
BEGIN;--> statement-breakpoint
UPDATE "accounts" SET "balance" = "balance" + 0 WHERE "email" = 'a@example.test';
