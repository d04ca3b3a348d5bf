/** Canonical RSVP statuses stored in guests.rsvp_status (migration 0018). */
export const RSVP_STATUSES = ['pending', 'confirmed', 'declined', 'maybe'] as const;
export type RsvpStatus = (typeof RSVP_STATUSES)[number];

const LEGACY_RSVP: Readonly<Record<string, RsvpStatus>> = {
  // canonical values
  pending: 'pending',
  confirmed: 'confirmed',
  declined: 'declined',
  maybe: 'maybe',
  // legacy values
  attending: 'confirmed',
  accepted: 'confirmed',
  yes: 'confirmed',
  not_attending: 'declined',
  no: 'declined',
  tentative: 'maybe',
};

/**
 * Normalise a (possibly legacy) RSVP value to a canonical status.
 * Matching is case-insensitive and ignores surrounding whitespace;
 * anything unknown (including null/undefined) becomes 'pending'.
 */
export function normalizeRsvpStatus(value: string | null | undefined): RsvpStatus {
  if (typeof value !== 'string') return 'pending';
  const key = value.trim().toLowerCase();
  return Object.hasOwn(LEGACY_RSVP, key) ? (LEGACY_RSVP[key] as RsvpStatus) : 'pending';
}
