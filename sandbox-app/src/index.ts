export { normalizeRsvpStatus, RSVP_STATUSES } from './lib/rsvp.js';
export type { RsvpStatus } from './lib/rsvp.js';
export { normalizeGuestSide, GUEST_SIDES } from './lib/guest-side.js';
export type { GuestSide } from './lib/guest-side.js';
export { computeClientStats } from './lib/client-stats.js';
export type { BudgetRow, ClientStats, GuestRow } from './lib/client-stats.js';
export * as schema from './db/schema.js';
