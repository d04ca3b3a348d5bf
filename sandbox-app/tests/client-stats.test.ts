import { describe, expect, it } from 'vitest';
import { computeClientStats } from '../src/lib/client-stats.js';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

describe('computeClientStats', () => {
  it('returns zeroes for empty lists', () => {
    expect(computeClientStats(A, [], [])).toEqual({ guestCount: 0, budget: '0.00' });
  });

  it('counts guests and sums estimated_cost for the given client only', () => {
    const guests = [{ clientId: A }, { clientId: A }, { clientId: B }, { clientId: A }];
    const budget = [
      { clientId: A, estimatedCost: '1000.00' },
      { clientId: A, estimatedCost: '234.5' },
      { clientId: B, estimatedCost: '999.99' },
    ];
    expect(computeClientStats(A, guests, budget)).toEqual({ guestCount: 3, budget: '1234.50' });
    expect(computeClientStats(B, guests, budget)).toEqual({ guestCount: 1, budget: '999.99' });
  });

  it('sums decimals exactly and always prints two decimals', () => {
    const budget = [
      { clientId: A, estimatedCost: '0.10' },
      { clientId: A, estimatedCost: '0.20' },
      { clientId: A, estimatedCost: 12 },
      { clientId: A, estimatedCost: '9999999999.99' },
      { clientId: A, estimatedCost: null },
    ];
    expect(computeClientStats(A, [], budget).budget).toBe('10000000012.29');
  });

  it('rejects non-numeric estimated_cost values', () => {
    expect(() => computeClientStats(A, [], [{ clientId: A, estimatedCost: 'abc' }])).toThrow(TypeError);
  });
});
