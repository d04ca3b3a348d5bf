DROP TABLE "old_notes" CASCADE;--> statement-breakpoint
ALTER TABLE "ledger" ADD COLUMN "posted_at" timestamp with time zone DEFAULT now() NOT NULL;