ALTER TABLE "accounts" ADD COLUMN "access_token_encrypted" text;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "refresh_token_encrypted" text;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "token_encryption_version" smallint DEFAULT 0 NOT NULL;