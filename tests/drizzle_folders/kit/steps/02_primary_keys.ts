// Primary keys: members' composite key gains role; tags.id stops being the key (drizzle-kit writes a comment).
import { sql } from 'drizzle-orm';
import { integer, pgEnum, pgTable, primaryKey, serial, text, timestamp, uuid } from 'drizzle-orm/pg-core';

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

export const posts = pgTable('posts', {
  id: serial('id').primaryKey(),
  companyId: uuid('company_id').references(() => companies.id),
  title: text('title').notNull(),
  status: postStatus('status').default('draft').notNull(),
  firstName: text('first_name'),
  lastName: text('last_name'),
  views: integer('views').default(0).notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).default(sql`now()`).notNull(),
});

export const tags = pgTable('tags', {
  id: serial('id').notNull(),
  label: text('label').notNull(),
});
