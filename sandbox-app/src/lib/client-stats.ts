/** Minimal row shapes needed to compute the cached stats on clients (migration 0017). */
export interface GuestRow {
  clientId: string;
}

export interface BudgetRow {
  clientId: string;
  /** numeric(12,2) as returned by node-postgres: a decimal string (or a number). */
  estimatedCost: string | number | null | undefined;
}

export interface ClientStats {
  guestCount: number;
  /** Sum of budget.estimated_cost, formatted with exactly two decimals, e.g. "1234.50". */
  budget: string;
}

/** Parse a numeric(…,2) value into integer cents, without floating point drift. */
function toCents(value: string | number | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  const text = (typeof value === 'number' ? value.toFixed(2) : value).trim();
  if (text === '') return 0n;
  const match = /^([+-])?(\d*)(?:\.(\d*))?$/.exec(text);
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) {
    throw new TypeError(`invalid numeric value: ${JSON.stringify(value)}`);
  }
  const sign = match[1] === '-' ? -1n : 1n;
  const whole = BigInt(match[2] || '0');
  const fraction = (match[3] ?? '').padEnd(3, '0');
  // round half away from zero on the third decimal
  let cents = whole * 100n + BigInt(fraction.slice(0, 2));
  if (Number(fraction[2]) >= 5) cents += 1n;
  return sign * cents;
}

function formatCents(cents: bigint): string {
  const negative = cents < 0n;
  const abs = negative ? -cents : cents;
  const whole = abs / 100n;
  const fraction = (abs % 100n).toString().padStart(2, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}

/**
 * Compute the cached `{ guestCount, budget }` for one client from its guest
 * and budget rows. Rows belonging to other clients are ignored.
 */
export function computeClientStats(
  clientId: string,
  guests: readonly GuestRow[],
  budgetRows: readonly BudgetRow[],
): ClientStats {
  const guestCount = guests.filter((g) => g.clientId === clientId).length;
  let total = 0n;
  for (const row of budgetRows) {
    if (row.clientId === clientId) total += toCents(row.estimatedCost);
  }
  return { guestCount, budget: formatCents(total) };
}
