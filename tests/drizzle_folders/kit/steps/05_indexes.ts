// Indexes: composite, unique on an expression, partial (WHERE), and one on the members' role.
import { sql } from 'drizzle-orm';
import { index, integer, pgEnum, pgPolicy, pgTable, primaryKey, serial, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

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
  (t) => [primaryKey({ columns: [t.companyId, t.userEmail, t.role] }), index('members_role_idx').on(t.role)],
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
    index('articles_company_created_idx').on(t.companyId, t.createdAt.desc()),
    uniqueIndex('articles_company_title_key').on(t.companyId, sql`lower(${t.title})`),
    index('articles_popular_idx').on(t.createdAt).where(sql`${t.views} > 100`),
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
