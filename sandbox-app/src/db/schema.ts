/**
 * WeddingFlo sandbox - Drizzle ORM schema (PostgreSQL).
 *
 * This file is the source of truth for drizzle-kit: `drizzle-kit generate`
 * diffs it against drizzle/meta/<last>_snapshot.json.
 *
 * Notes on things that live ONLY in hand-written SQL migrations (drizzle-kit
 * does not see them, so they are deliberately not declared here):
 *  - 0023: helper functions public.app_current_company_id() and
 *          public.app_is_service().
 *  - 0024 / 0027: ENABLE + FORCE ROW LEVEL SECURITY and the
 *          `tenant_isolation` policies on the tenant tables.
 *  - 0026: `company_id` is SET NOT NULL on guests, events, budget, vendors
 *          and hotels (best effort, inside DO blocks that only RAISE NOTICE on
 *          failure). Those columns are intentionally still declared nullable
 *          below so that drizzle-kit's snapshots stay consistent with the
 *          generated history; long term they should become .notNull() in a
 *          regular generated migration.
 */
import { boolean, date, index, integer, numeric, pgTable, smallint, text, timestamp, uuid } from 'drizzle-orm/pg-core';

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true }).defaultNow().notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).defaultNow().notNull(),
};

export const companies = pgTable('companies', {
  id: uuid('id').defaultRandom().primaryKey(),
  name: text('name').notNull(),
  slug: text('slug').notNull().unique(),
  ...timestamps,
});

// Better Auth tables (plural names).
export const users = pgTable('users', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  email: text('email').notNull().unique(),
  emailVerified: boolean('email_verified').default(false).notNull(),
  image: text('image'),
  companyId: uuid('company_id').references(() => companies.id),
  role: text('role').default('planner').notNull(),
  ...timestamps,
});

export const sessions = pgTable('sessions', {
  id: text('id').primaryKey(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  token: text('token').notNull().unique(),
  ipAddress: text('ip_address'),
  userAgent: text('user_agent'),
  userId: text('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  ...timestamps,
});

export const accounts = pgTable('accounts', {
  id: text('id').primaryKey(),
  accountId: text('account_id').notNull(),
  providerId: text('provider_id').notNull(),
  userId: text('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  accessToken: text('access_token'),
  refreshToken: text('refresh_token'),
  idToken: text('id_token'),
  accessTokenExpiresAt: timestamp('access_token_expires_at', { withTimezone: true }),
  refreshTokenExpiresAt: timestamp('refresh_token_expires_at', { withTimezone: true }),
  scope: text('scope'),
  password: text('password'),
  // 0025: preparation for encrypting OAuth tokens at rest.
  accessTokenEncrypted: text('access_token_encrypted'),
  refreshTokenEncrypted: text('refresh_token_encrypted'),
  tokenEncryptionVersion: smallint('token_encryption_version').default(0).notNull(),
  ...timestamps,
});

export const verifications = pgTable('verifications', {
  id: text('id').primaryKey(),
  identifier: text('identifier').notNull(),
  value: text('value').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  ...timestamps,
});

export const clients = pgTable(
  'clients',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    companyId: uuid('company_id')
      .notNull()
      .references(() => companies.id),
    partner1FirstName: text('partner1_first_name').notNull(),
    partner1LastName: text('partner1_last_name'),
    partner2FirstName: text('partner2_first_name'),
    partner2LastName: text('partner2_last_name'),
    weddingDate: date('wedding_date'),
    // 0017: cached stats (see src/lib/client-stats.ts).
    guestCount: integer('guest_count').default(0).notNull(),
    budget: text('budget').default('0').notNull(),
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
    ...timestamps,
  },
  (t) => [
    index('clients_company_id_idx').on(t.companyId),
    index('clients_deleted_at_idx').on(t.deletedAt),
  ],
);

export const guests = pgTable(
  'guests',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    firstName: text('first_name').notNull(),
    lastName: text('last_name'),
    email: text('email'),
    phone: text('phone'),
    // 0018: see src/lib/rsvp.ts and src/lib/guest-side.ts for legacy value mapping.
    rsvpStatus: text('rsvp_status').default('pending').notNull(),
    guestSide: text('guest_side'),
    plusOne: boolean('plus_one').default(false).notNull(),
    checkedInAt: timestamp('checked_in_at', { withTimezone: true }),
    ...timestamps,
  },
  (t) => [
    index('guests_client_id_idx').on(t.clientId),
  ],
);

export const events = pgTable(
  'events',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    title: text('title').notNull(),
    eventDate: date('event_date'),
    venue: text('venue'),
    ...timestamps,
  },
  (t) => [
    index('events_client_id_idx').on(t.clientId),
  ],
);

export const budget = pgTable(
  'budget',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    category: text('category').notNull(),
    item: text('item').notNull(),
    estimatedCost: numeric('estimated_cost', { precision: 12, scale: 2 }).default('0').notNull(),
    actualCost: numeric('actual_cost', { precision: 12, scale: 2 }),
    ...timestamps,
  },
  (t) => [
    index('budget_client_id_idx').on(t.clientId),
  ],
);

export const vendors = pgTable(
  'vendors',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    name: text('name').notNull(),
    category: text('category'),
    contactEmail: text('contact_email'),
    phone: text('phone'),
    ...timestamps,
  },
  (t) => [
    index('vendors_client_id_idx').on(t.clientId),
  ],
);

export const hotels = pgTable(
  'hotels',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    name: text('name').notNull(),
    // 0026: widened from smallint to integer (hand-written USING cast).
    roomBlock: integer('room_block'),
    ...timestamps,
  },
  (t) => [
    index('hotels_client_id_idx').on(t.clientId),
  ],
);

export const gifts = pgTable(
  'gifts',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    guestId: uuid('guest_id').references(() => guests.id, { onDelete: 'set null' }),
    description: text('description').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true }),
    ...timestamps,
  },
  (t) => [
    index('gifts_client_id_idx').on(t.clientId),
  ],
);

export const timeline = pgTable(
  'timeline',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    title: text('title').notNull(),
    startsAt: timestamp('starts_at', { withTimezone: true }),
    ...timestamps,
  },
  (t) => [
    index('timeline_client_id_idx').on(t.clientId),
  ],
);

export const documents = pgTable(
  'documents',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    name: text('name').notNull(),
    url: text('url').notNull(),
    ...timestamps,
  },
  (t) => [
    index('documents_client_id_idx').on(t.clientId),
  ],
);

export const advancePayments = pgTable(
  'advance_payments',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    budgetId: uuid('budget_id')
      .notNull()
      .references(() => budget.id, { onDelete: 'cascade' }),
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    amount: numeric('amount', { precision: 12, scale: 2 }).notNull(),
    paidAt: date('paid_at'),
    ...timestamps,
  },
  (t) => [
    index('advance_payments_client_id_idx').on(t.clientId),
    index('advance_payments_budget_id_idx').on(t.budgetId),
  ],
);

export const chatbotConversations = pgTable(
  'chatbot_conversations',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    companyId: uuid('company_id')
      .notNull()
      .references(() => companies.id),
    clientId: uuid('client_id').references(() => clients.id, { onDelete: 'set null' }),
    userId: text('user_id').references(() => users.id, { onDelete: 'set null' }),
    title: text('title'),
    ...timestamps,
  },
  (t) => [index('chatbot_conversations_client_id_idx').on(t.clientId)],
);

export const chatbotMessages = pgTable(
  'chatbot_messages',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => chatbotConversations.id, { onDelete: 'cascade' }),
    companyId: uuid('company_id').references(() => companies.id),
    role: text('role').notNull(),
    content: text('content').notNull(),
    ...timestamps,
  },
  (t) => [index('chatbot_messages_conversation_id_idx').on(t.conversationId)],
);
