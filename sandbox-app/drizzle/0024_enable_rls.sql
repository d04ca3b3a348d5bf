-- Custom SQL migration: enable row level security on tenant tables.
ALTER TABLE "clients" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "clients" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "clients" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "guests" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "guests" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "guests" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "events" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "events" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "events" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "budget" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "budget" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "budget" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "vendors" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "vendors" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "vendors" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "hotels" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "hotels" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "hotels" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "chatbot_conversations" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "chatbot_conversations" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "chatbot_conversations" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "companies" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "companies" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "companies" AS PERMISSIVE FOR ALL USING ("id" = public.app_current_company_id()) WITH CHECK ("id" = public.app_current_company_id());
