// A second schema with a table, and a view over articles.
import { type SQL, sql } from 'drizzle-orm';
import {
  check,
  index,
  integer,
  pgEnum,
  pgPolicy,
  pgSchema,
  pgTable,
  pgView,
  primaryKey,
  serial,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';

export const postStatus = pgEnum('post_status', ['draft', 'review', 'published']);

export const companies = pgTable('companies', {
  id: uuid('id').defaultRandom().primaryKey(),
  name: text('name').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).defaultNow().notNull(),
});

export const members = pgTable(
  'members',
  {
    companyId: uuid('company_id').notNull().references(() => companies.id, { onDelete: 'cascade' }),
    userEmail: text('user_email').notNull(),
    role: text('role').default('member').notNull(),
  },
  (t) => [primaryKey({ columns: [t.companyId, t.userEmail, t.role] }), index('members_role_idx').on(t.role)],
);

export const articles = pgTable(
  'articles',
  {
    id: serial('id').primaryKey(),
    companyId: uuid('company_id').notNull().references(() => companies.id),
    title: varchar('title', { length: 200 }).notNull(),
    status: postStatus('status').default('draft').notNull(),
    givenName: text('given_name'),
    lastName: text('last_name'),
    fullName: text('full_name').generatedAlwaysAs(sql`coalesce(given_name, '') || ' ' || coalesce(last_name, '')`),
    views: integer('views').default(1).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).default(sql`now()`).notNull(),
  },
  (t) => [
    index('articles_company_created_idx').on(t.companyId, t.createdAt.desc()),
    uniqueIndex('articles_company_title_key').on(t.companyId, sql`lower(${t.title})`),
    check('articles_views_nonnegative', sql`${t.views} >= 0`),
    pgPolicy('articles_tenant_read', {
      as: 'permissive',
      for: 'select',
      to: 'public',
      using: sql`${t.companyId} = nullif(current_setting('app.company_id', true), '')::uuid`,
    }),
  ],
).enableRLS();

export const auditLog = pgTable('audit_log', {
  id: integer('id').primaryKey().generatedAlwaysAsIdentity({ startWith: 1000 }),
  companyId: uuid('company_id').notNull(),
  action: text('action').notNull(),
  actionLower: text('action_lower').generatedAlwaysAs((): SQL => sql`lower(${auditLog.action})`),
  at: timestamp('at', { withTimezone: true }).defaultNow().notNull(),
});

export const tags = pgTable('tags', {
  id: serial('id').notNull(),
});

export const reporting = pgSchema('reporting');

export const dailyViews = reporting.table('daily_views', {
  day: timestamp('day', { mode: 'string' }).primaryKey(),
  views: integer('views').notNull(),
});

export const publishedArticles = pgView('published_articles', {
  id: integer('id'),
  title: varchar('title', { length: 200 }),
}).as(sql`select id, title from articles where status = 'published'`);
