-- A trigger function in $$, a SQL function in $BODY$ holding semicolons and a nested dollar quote, and the triggers.
CREATE OR REPLACE FUNCTION "public"."touch_updated_at"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now(); -- a comment; with a semicolon
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION "public"."account_label"(account_id integer) RETURNS text
LANGUAGE sql STABLE AS $BODY$
  SELECT email || $sep$; $sep$ || balance::text FROM accounts WHERE id = account_id;
$BODY$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS "accounts_touch" ON "accounts";
CREATE TRIGGER "accounts_touch" BEFORE UPDATE ON "accounts"
  FOR EACH ROW EXECUTE FUNCTION "public"."touch_updated_at"();
--> statement-breakpoint
COMMENT ON FUNCTION "public"."account_label"(integer) IS 'email; balance (for support screens)';
