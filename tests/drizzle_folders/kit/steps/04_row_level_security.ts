// Row-level security: articles readable only inside the current company (a policy on the app's setting).
import { sql } from 'drizzle-orm';
import { integer, pgEnum, pgPolicy, pgTable, primaryKey, serial, text, timestamp, uuid } from 'drizzle-orm/pg-core';

export const postStatus = pgEnum('post_status', ['draft', 'review', 'published', 'archived']);

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
  (t) => [primaryKey({ columns: [t.companyId, t.userEmail, t.role] })],
);

export const articles = pgTable(
  'articles',
  {
    id: serial('id').primaryKey(),
    companyId: uuid('company_id').references(() => companies.id),
    title: text('title').notNull(),
    status: postStatus('status').default('draft').notNull(),
    givenName: text('given_name'),
    lastName: text('last_name'),
    views: integer('views').default(0).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).default(sql`now()`).notNull(),
  },
  (t) => [
    pgPolicy('articles_tenant_read', {
      as: 'permissive',
      for: 'select',
      to: 'public',
      using: sql`${t.companyId} = nullif(current_setting('app.company_id', true), '')::uuid`,
    }),
  ],
).enableRLS();

export const tags = pgTable('tags', {
  id: serial('id').notNull(),
  label: text('label').notNull(),
});
