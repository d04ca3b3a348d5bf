-- Custom SQL migration file, put your code below! --
-- Move the old notes into notes, keeping where each came from.
/* The old table is dropped by the next generated migration, once the schema no longer declares it. */
--> statement-breakpoint
INSERT INTO "old_notes" ("account_id", "text")
  SELECT "id", 'welcome, ' || "email" FROM "accounts";
INSERT INTO "notes" ("account_id", "body", "moved_from")
  SELECT "account_id", "text", "id" FROM "old_notes" ORDER BY "id";
--> statement-breakpoint
UPDATE "notes" SET "body" = E'moved:\t' || "body" WHERE "moved_from" IS NOT NULL;
--> statement-breakpoint
