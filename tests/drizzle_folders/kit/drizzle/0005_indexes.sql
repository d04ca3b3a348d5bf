CREATE INDEX "articles_company_created_idx" ON "articles" USING btree ("company_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "articles_company_title_key" ON "articles" USING btree ("company_id",lower("title"));--> statement-breakpoint
CREATE INDEX "articles_popular_idx" ON "articles" USING btree ("created_at") WHERE "articles"."views" > 100;--> statement-breakpoint
CREATE INDEX "members_role_idx" ON "members" USING btree ("role");