// Accounts with a ledger, and the notes that a later hand-written migration moves to a new table.
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
});

export const oldNotes = pgTable('old_notes', {
  id: serial('id').primaryKey(),
  accountId: integer('account_id').notNull(),
  text: text('text').notNull(),
});

export const notes = pgTable('notes', {
  id: serial('id').primaryKey(),
  accountId: integer('account_id').notNull(),
  body: text('body').notNull(),
  movedFrom: integer('moved_from'),
});
