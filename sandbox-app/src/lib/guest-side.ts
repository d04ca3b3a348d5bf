/** Canonical guest sides stored in guests.guest_side (migration 0018). */
export const GUEST_SIDES = ['partner1', 'partner2', 'mutual'] as const;
export type GuestSide = (typeof GUEST_SIDES)[number];

const LEGACY_SIDE: Readonly<Record<string, GuestSide>> = {
  // canonical values
  partner1: 'partner1',
  partner2: 'partner2',
  mutual: 'mutual',
  // legacy values
  bride: 'partner1',
  bride_side: 'partner1',
  groom: 'partner2',
  groom_side: 'partner2',
  both: 'mutual',
  common: 'mutual',
  shared: 'mutual',
};

/**
 * Normalise a (possibly legacy) guest side. Case-insensitive, trimmed;
 * anything unknown (including null/undefined/empty) becomes null.
 */
export function normalizeGuestSide(value: string | null | undefined): GuestSide | null {
  if (typeof value !== 'string') return null;
  const key = value.trim().toLowerCase();
  return Object.hasOwn(LEGACY_SIDE, key) ? (LEGACY_SIDE[key] as GuestSide) : null;
}
