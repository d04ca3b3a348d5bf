-- Custom SQL migration file, put your code below! --
-- The enum and the foreign key in DO blocks that tolerate a rerun, the way drizzle-kit used to write them.
DO $$ BEGIN
 CREATE TYPE "public"."currency" AS ENUM('eur', 'usd');
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
ALTER TABLE "ledger" ADD COLUMN IF NOT EXISTS "currency" "currency" DEFAULT 'eur' NOT NULL;--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "ledger" ADD CONSTRAINT "ledger_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
INSERT INTO "accounts" ("email", "balance") VALUES ('a@example.test', 10), ('b@example.test', 0);
INSERT INTO "ledger" ("account_id", "amount", "memo")
  SELECT "id", 10, 'opening; balance' FROM "accounts" WHERE "email" = 'a@example.test';
