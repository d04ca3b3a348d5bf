import { describe, expect, it } from 'vitest';
import { normalizeRsvpStatus, RSVP_STATUSES } from '../src/lib/rsvp.js';

describe('normalizeRsvpStatus', () => {
  it('maps legacy "accepted" values to confirmed', () => {
    for (const v of ['attending', 'accepted', 'yes']) expect(normalizeRsvpStatus(v)).toBe('confirmed');
  });

  it('maps legacy "declined" and "maybe" values', () => {
    expect(normalizeRsvpStatus('not_attending')).toBe('declined');
    expect(normalizeRsvpStatus('no')).toBe('declined');
    expect(normalizeRsvpStatus('tentative')).toBe('maybe');
  });

  it('keeps canonical statuses unchanged', () => {
    for (const v of RSVP_STATUSES) expect(normalizeRsvpStatus(v)).toBe(v);
  });

  it('ignores case and surrounding whitespace', () => {
    expect(normalizeRsvpStatus('  YES ')).toBe('confirmed');
    expect(normalizeRsvpStatus('\tNot_Attending\n')).toBe('declined');
    expect(normalizeRsvpStatus(' Tentative')).toBe('maybe');
    expect(normalizeRsvpStatus('DECLINED')).toBe('declined');
  });

  it('falls back to pending for junk, empty and missing values', () => {
    for (const v of ['', '   ', 'attend', 'y', 'not attending', 'toString', '__proto__', null, undefined]) {
      expect(normalizeRsvpStatus(v)).toBe('pending');
    }
  });
});
