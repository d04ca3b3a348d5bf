-- Custom SQL migration: backfill company_id on late tenant tables, then enable RLS on them.
UPDATE "gifts" SET "company_id" = c."company_id" FROM "clients" c WHERE "gifts"."client_id" = c."id" AND "gifts"."company_id" IS NULL;
--> statement-breakpoint
UPDATE "timeline" SET "company_id" = c."company_id" FROM "clients" c WHERE "timeline"."client_id" = c."id" AND "timeline"."company_id" IS NULL;
--> statement-breakpoint
UPDATE "documents" SET "company_id" = c."company_id" FROM "clients" c WHERE "documents"."client_id" = c."id" AND "documents"."company_id" IS NULL;
--> statement-breakpoint
UPDATE "advance_payments" SET "company_id" = c."company_id" FROM "clients" c WHERE "advance_payments"."client_id" = c."id" AND "advance_payments"."company_id" IS NULL;
--> statement-breakpoint
UPDATE "chatbot_messages" SET "company_id" = cc."company_id" FROM "chatbot_conversations" cc WHERE "chatbot_messages"."conversation_id" = cc."id" AND "chatbot_messages"."company_id" IS NULL;
--> statement-breakpoint
ALTER TABLE "gifts" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "gifts" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "gifts" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "timeline" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "timeline" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "timeline" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "documents" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "documents" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "documents" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "advance_payments" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "advance_payments" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "advance_payments" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
--> statement-breakpoint
ALTER TABLE "chatbot_messages" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "chatbot_messages" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "chatbot_messages" AS PERMISSIVE FOR ALL USING ("company_id" = public.app_current_company_id()) WITH CHECK ("company_id" = public.app_current_company_id());
