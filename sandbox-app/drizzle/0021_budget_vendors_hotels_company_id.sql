ALTER TABLE "budget" ADD COLUMN "company_id" uuid;--> statement-breakpoint
ALTER TABLE "hotels" ADD COLUMN "company_id" uuid;--> statement-breakpoint
ALTER TABLE "vendors" ADD COLUMN "company_id" uuid;--> statement-breakpoint
ALTER TABLE "budget" ADD CONSTRAINT "budget_company_id_companies_id_fk" FOREIGN KEY ("company_id") REFERENCES "public"."companies"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "hotels" ADD CONSTRAINT "hotels_company_id_companies_id_fk" FOREIGN KEY ("company_id") REFERENCES "public"."companies"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "vendors" ADD CONSTRAINT "vendors_company_id_companies_id_fk" FOREIGN KEY ("company_id") REFERENCES "public"."companies"("id") ON DELETE no action ON UPDATE no action;