ALTER TABLE "guests" ADD COLUMN "rsvp_status" text DEFAULT 'pending' NOT NULL;--> statement-breakpoint
ALTER TABLE "guests" ADD COLUMN "guest_side" text;