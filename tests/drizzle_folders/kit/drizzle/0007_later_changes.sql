ALTER TABLE "articles" ALTER COLUMN "status" SET DATA TYPE text;--> statement-breakpoint
ALTER TABLE "articles" ALTER COLUMN "status" SET DEFAULT 'draft'::text;--> statement-breakpoint
DROP TYPE "public"."post_status";--> statement-breakpoint
CREATE TYPE "public"."post_status" AS ENUM('draft', 'review', 'published');--> statement-breakpoint
ALTER TABLE "articles" ALTER COLUMN "status" SET DEFAULT 'draft'::"public"."post_status";--> statement-breakpoint
ALTER TABLE "articles" ALTER COLUMN "status" SET DATA TYPE "public"."post_status" USING "status"::"public"."post_status";--> statement-breakpoint
DROP INDEX "articles_popular_idx";--> statement-breakpoint
ALTER TABLE "articles" ALTER COLUMN "company_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "articles" ALTER COLUMN "title" SET DATA TYPE varchar(200);--> statement-breakpoint
ALTER TABLE "articles" ALTER COLUMN "views" SET DEFAULT 1;--> statement-breakpoint
ALTER TABLE "tags" DROP COLUMN "label";--> statement-breakpoint
ALTER TABLE "articles" ADD CONSTRAINT "articles_views_nonnegative" CHECK ("articles"."views" >= 0);