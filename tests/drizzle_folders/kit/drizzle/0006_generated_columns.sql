CREATE TABLE "audit_log" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "audit_log_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1000 CACHE 1),
	"company_id" uuid NOT NULL,
	"action" text NOT NULL,
	"action_lower" text GENERATED ALWAYS AS (lower("audit_log"."action")) STORED,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "articles" ADD COLUMN "full_name" text GENERATED ALWAYS AS (coalesce(given_name, '') || ' ' || coalesce(last_name, '')) STORED;