import { describe, expect, it } from 'vitest';
import { GUEST_SIDES, normalizeGuestSide } from '../src/lib/guest-side.js';

describe('normalizeGuestSide', () => {
  it('maps every legacy value', () => {
    expect(normalizeGuestSide('bride')).toBe('partner1');
    expect(normalizeGuestSide('bride_side')).toBe('partner1');
    expect(normalizeGuestSide('groom')).toBe('partner2');
    expect(normalizeGuestSide('groom_side')).toBe('partner2');
    expect(normalizeGuestSide('both')).toBe('mutual');
    expect(normalizeGuestSide('common')).toBe('mutual');
    expect(normalizeGuestSide('shared')).toBe('mutual');
  });

  it('keeps canonical sides unchanged', () => {
    for (const v of GUEST_SIDES) expect(normalizeGuestSide(v)).toBe(v);
  });

  it('ignores case and surrounding whitespace', () => {
    expect(normalizeGuestSide(' Bride_Side ')).toBe('partner1');
    expect(normalizeGuestSide('GROOM\n')).toBe('partner2');
    expect(normalizeGuestSide('\tMutual')).toBe('mutual');
  });

  it('returns null for junk, empty and missing values', () => {
    for (const v of ['', '  ', 'partner3', 'bride side', 'hasOwnProperty', 'brides', null, undefined]) {
      expect(normalizeGuestSide(v)).toBeNull();
    }
  });
});
