CREATE SCHEMA "reporting";
--> statement-breakpoint
CREATE TABLE "reporting"."daily_views" (
	"day" timestamp PRIMARY KEY NOT NULL,
	"views" integer NOT NULL
);
--> statement-breakpoint
CREATE VIEW "public"."published_articles" AS (select id, title from articles where status = 'published');