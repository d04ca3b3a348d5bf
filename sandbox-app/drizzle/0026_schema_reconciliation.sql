-- Hand-edited: explicit USING cast for the smallint -> integer widening.
ALTER TABLE "hotels" ALTER COLUMN "room_block" SET DATA TYPE integer USING "room_block"::integer;
--> statement-breakpoint
DO $$ BEGIN ALTER TABLE "guests" ALTER COLUMN "company_id" SET NOT NULL; EXCEPTION WHEN others THEN RAISE NOTICE 'skipped NOT NULL on guests.company_id: %', SQLERRM; END $$;
--> statement-breakpoint
DO $$ BEGIN ALTER TABLE "events" ALTER COLUMN "company_id" SET NOT NULL; EXCEPTION WHEN others THEN RAISE NOTICE 'skipped NOT NULL on events.company_id: %', SQLERRM; END $$;
--> statement-breakpoint
DO $$ BEGIN ALTER TABLE "budget" ALTER COLUMN "company_id" SET NOT NULL; EXCEPTION WHEN others THEN RAISE NOTICE 'skipped NOT NULL on budget.company_id: %', SQLERRM; END $$;
--> statement-breakpoint
DO $$ BEGIN ALTER TABLE "vendors" ALTER COLUMN "company_id" SET NOT NULL; EXCEPTION WHEN others THEN RAISE NOTICE 'skipped NOT NULL on vendors.company_id: %', SQLERRM; END $$;
--> statement-breakpoint
DO $$ BEGIN ALTER TABLE "hotels" ALTER COLUMN "company_id" SET NOT NULL; EXCEPTION WHEN others THEN RAISE NOTICE 'skipped NOT NULL on hotels.company_id: %', SQLERRM; END $$;
