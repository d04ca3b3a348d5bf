ALTER TABLE "posts" RENAME TO "articles";--> statement-breakpoint
ALTER TABLE "articles" RENAME COLUMN "first_name" TO "given_name";--> statement-breakpoint
ALTER TABLE "articles" DROP CONSTRAINT "posts_company_id_companies_id_fk";
--> statement-breakpoint
ALTER TABLE "articles" ADD CONSTRAINT "articles_company_id_companies_id_fk" FOREIGN KEY ("company_id") REFERENCES "public"."companies"("id") ON DELETE no action ON UPDATE no action;