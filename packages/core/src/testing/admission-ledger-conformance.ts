import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AdmissionClass, AdmissionLedger, AdmissionTicket, ClassLimits } from '../admission-ledger.js';

/**
 * The rules every `AdmissionLedger` must follow. An adapter calls this once from its own tests:
 *
 *     runAdmissionLedgerConformance('redis', async () => createRedisAdmissionLedger({ keyPrefix: fresh() }));
 *
 * `createLedger` is called before every test and must return an empty ledger (a shared one: a
 * fresh key prefix). A ledger with leases (`leaseMs` set) is also checked for reclaiming the
 * slots nobody renews: give it a short lease in the test, the checks wait about twice that.
 */
export function runAdmissionLedgerConformance(
  name: string,
  createLedger: () => Promise<AdmissionLedger>,
): void {
  describe(`AdmissionLedger conformance: ${name}`, () => {
    let ledger: AdmissionLedger;
    beforeEach(async () => {
      ledger = await createLedger();
    });
    afterEach(async () => {
      await ledger?.close();
    });

    const run = randomUUID().slice(0, 8);
    let counter = 0;
    const ticket = (
      admissionClass: AdmissionClass,
      patch: Partial<AdmissionTicket> = {},
    ): AdmissionTicket => ({
      id: `cmd-${run}-${++counter}`,
      gatewayId: `gw-${run}-${counter}`,
      callerId: `caller-${run}-${counter}`,
      admissionClass,
      ...patch,
    });
    const open = (limit: number): ClassLimits => ({ limit, perGateway: limit, perCaller: limit });
    const settle = (outcomes: (string | undefined)[]) => ({
      admitted: outcomes.filter((outcome) => outcome === undefined).length,
      refused: outcomes.filter((outcome) => outcome !== undefined).length,
    });

    it('takes slots up to the class limit, refuses the next as server-full, and a release frees one', async () => {
      const tickets = Array.from({ length: 3 }, () => ticket('medium'));
      for (const t of tickets) expect(await ledger.acquire(t, open(3))).toBeUndefined();
      const late = ticket('medium');
      expect(await ledger.acquire(late, open(3))).toBe('server');
      expect(await ledger.occupancy()).toEqual({ small: 0, medium: 3, large: 0 });

      expect(await ledger.release(tickets[0]!.id)).toBe(true);
      expect(await ledger.acquire(late, open(3))).toBeUndefined();
      expect((await ledger.occupancy()).medium).toBe(3);
    });

    it('counts each class on its own', async () => {
      expect(await ledger.acquire(ticket('large'), open(1))).toBeUndefined();
      expect(await ledger.acquire(ticket('large'), open(1))).toBe('server');
      expect(await ledger.acquire(ticket('small'), open(1))).toBeUndefined();
      expect(await ledger.acquire(ticket('medium'), open(1))).toBeUndefined();
      expect(await ledger.occupancy()).toEqual({ small: 1, medium: 1, large: 1 });
    });

    it("refuses a gateway past its share and a caller past its share, leaving the others' slots free", async () => {
      const limits: ClassLimits = { limit: 10, perGateway: 2, perCaller: 3 };
      const gatewayId = `gw-${run}-shared`;
      expect(await ledger.acquire(ticket('small', { gatewayId }), limits)).toBeUndefined();
      expect(await ledger.acquire(ticket('small', { gatewayId }), limits)).toBeUndefined();
      expect(await ledger.acquire(ticket('small', { gatewayId }), limits)).toBe('gateway');
      // Another gateway, and the same gateway in another class, are not affected.
      expect(await ledger.acquire(ticket('small'), limits)).toBeUndefined();
      expect(await ledger.acquire(ticket('medium', { gatewayId }), limits)).toBeUndefined();

      const callerId = `caller-${run}-shared`;
      for (let i = 0; i < 3; i++)
        expect(await ledger.acquire(ticket('small', { callerId }), limits)).toBeUndefined();
      expect(await ledger.acquire(ticket('small', { callerId }), limits)).toBe('caller');
      // A ticket without a caller (adopted) counts against no caller.
      const { callerId: _, ...anonymous } = ticket('small');
      expect(await ledger.acquire(anonymous, limits)).toBeUndefined();
      expect((await ledger.occupancy()).small).toBe(7);
    });

    it('taking a slot the command already holds takes nothing twice', async () => {
      const t = ticket('small');
      expect(await ledger.acquire(t, open(2))).toBeUndefined();
      expect(await ledger.acquire(t, open(2))).toBeUndefined();
      expect((await ledger.occupancy()).small).toBe(1);
      expect(await ledger.release(t.id)).toBe(true);
      expect(await ledger.release(t.id)).toBe(false);
      expect(await ledger.release(`never-${run}`)).toBe(false);
      expect((await ledger.occupancy()).small).toBe(0);
    });

    it('promote moves a slot to the bigger class and frees the smaller one in the same step', async () => {
      const t = ticket('medium');
      expect(await ledger.acquire(t, open(1))).toBeUndefined();
      // The medium class is full, yet its own holder may move on.
      expect(await ledger.promote({ ...t, admissionClass: 'large' }, open(1))).toBeUndefined();
      expect(await ledger.occupancy()).toEqual({ small: 0, medium: 0, large: 1 });
      // Already large: promoting to medium or large again changes nothing.
      expect(await ledger.promote({ ...t, admissionClass: 'medium' }, open(1))).toBeUndefined();
      expect(await ledger.promote({ ...t, admissionClass: 'large' }, open(1))).toBeUndefined();
      expect(await ledger.occupancy()).toEqual({ small: 0, medium: 0, large: 1 });
      expect(await ledger.release(t.id)).toBe(true);
      expect(await ledger.occupancy()).toEqual({ small: 0, medium: 0, large: 0 });
    });

    it('a refused promotion keeps the slot the command had', async () => {
      expect(await ledger.acquire(ticket('large'), open(1))).toBeUndefined();
      const t = ticket('medium');
      expect(await ledger.acquire(t, open(5))).toBeUndefined();
      expect(await ledger.promote({ ...t, admissionClass: 'large' }, open(1))).toBe('server');
      expect(await ledger.occupancy()).toEqual({ small: 0, medium: 1, large: 1 });
    });

    it('promote keeps the caller of the slot it moves, and adopts a command that holds nothing', async () => {
      const callerId = `caller-${run}-promoted`;
      const limits: ClassLimits = { limit: 10, perGateway: 10, perCaller: 1 };
      const t = ticket('medium', { callerId });
      expect(await ledger.acquire(t, limits)).toBeUndefined();
      const { callerId: _, ...withoutCaller } = t;
      expect(await ledger.promote({ ...withoutCaller, admissionClass: 'large' }, limits)).toBeUndefined();
      // The large slot is still the caller's: its share of large is taken.
      expect(await ledger.acquire(ticket('large', { callerId }), limits)).toBe('caller');

      const adopted = ticket('medium');
      const { callerId: __, ...anonymous } = adopted;
      expect(await ledger.promote(anonymous, limits)).toBeUndefined();
      expect((await ledger.occupancy()).medium).toBe(1);
    });

    it('concurrent acquires never take more slots than the limit', async () => {
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, () => ledger.acquire(ticket('small'), open(7))),
      );
      expect(settle(outcomes)).toEqual({ admitted: 7, refused: 33 });
      expect((await ledger.occupancy()).small).toBe(7);
    });

    it('a slot nobody renews is reclaimed after the lease; a renewed one is kept', async (context) => {
      const leaseMs = ledger.leaseMs;
      // A ledger without leases frees slots only on release: its slots die with its process.
      if (leaseMs === undefined) return context.skip();
      const kept = ticket('large');
      const abandoned = ticket('large');
      expect(await ledger.acquire(kept, open(2))).toBeUndefined();
      expect(await ledger.acquire(abandoned, open(2))).toBeUndefined();
      expect(await ledger.acquire(ticket('large'), open(2))).toBe('server');
      // Renew one of the two, four times a lease, for twice the lease.
      for (let waited = 0; waited < leaseMs * 2; waited += leaseMs / 4) {
        await new Promise((resolve) => setTimeout(resolve, leaseMs / 4));
        await ledger.renew([kept.id]);
      }
      expect(await ledger.occupancy()).toEqual({ small: 0, medium: 0, large: 1 });
      expect(await ledger.acquire(ticket('large'), open(2))).toBeUndefined();
      expect(await ledger.acquire(ticket('large'), open(2))).toBe('server');
      expect(await ledger.release(abandoned.id)).toBe(false);
      expect(await ledger.release(kept.id)).toBe(true);
    });
  });
}
