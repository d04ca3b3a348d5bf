ALTER TABLE "clients" ADD COLUMN "guest_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "clients" ADD COLUMN "budget" text DEFAULT '0' NOT NULL;