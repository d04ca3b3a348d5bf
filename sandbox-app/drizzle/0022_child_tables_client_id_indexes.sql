CREATE INDEX "advance_payments_client_id_idx" ON "advance_payments" USING btree ("client_id");--> statement-breakpoint
CREATE INDEX "advance_payments_budget_id_idx" ON "advance_payments" USING btree ("budget_id");--> statement-breakpoint
CREATE INDEX "budget_client_id_idx" ON "budget" USING btree ("client_id");--> statement-breakpoint
CREATE INDEX "chatbot_conversations_client_id_idx" ON "chatbot_conversations" USING btree ("client_id");--> statement-breakpoint
CREATE INDEX "chatbot_messages_conversation_id_idx" ON "chatbot_messages" USING btree ("conversation_id");--> statement-breakpoint
CREATE INDEX "documents_client_id_idx" ON "documents" USING btree ("client_id");--> statement-breakpoint
CREATE INDEX "events_client_id_idx" ON "events" USING btree ("client_id");--> statement-breakpoint
CREATE INDEX "gifts_client_id_idx" ON "gifts" USING btree ("client_id");--> statement-breakpoint
CREATE INDEX "guests_client_id_idx" ON "guests" USING btree ("client_id");--> statement-breakpoint
CREATE INDEX "hotels_client_id_idx" ON "hotels" USING btree ("client_id");--> statement-breakpoint
CREATE INDEX "timeline_client_id_idx" ON "timeline" USING btree ("client_id");--> statement-breakpoint
CREATE INDEX "vendors_client_id_idx" ON "vendors" USING btree ("client_id");