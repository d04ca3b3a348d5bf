// The generated migration after the custom ones: old_notes goes, the ledger gets a posting time.
import { integer, numeric, pgTable, serial, text, timestamp } from 'drizzle-orm/pg-core';

export const accounts = pgTable('accounts', {
  id: serial('id').primaryKey(),
  email: text('email').notNull(),
  balance: numeric('balance', { precision: 12, scale: 2 }).default('0').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).defaultNow().notNull(),
});

export const ledger = pgTable('ledger', {
  id: serial('id').primaryKey(),
  accountId: integer('account_id').notNull(),
  amount: numeric('amount', { precision: 12, scale: 2 }).notNull(),
  memo: text('memo'),
  postedAt: timestamp('posted_at', { withTimezone: true }).defaultNow().notNull(),
});

export const notes = pgTable('notes', {
  id: serial('id').primaryKey(),
  accountId: integer('account_id').notNull(),
  body: text('body').notNull(),
  movedFrom: integer('moved_from'),
});
