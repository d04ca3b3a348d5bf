ALTER TYPE "public"."post_status" ADD VALUE 'review' BEFORE 'published';--> statement-breakpoint
ALTER TYPE "public"."post_status" ADD VALUE 'archived';