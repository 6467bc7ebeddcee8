import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusMessage, ClusterBus } from '../cluster-bus.js';

/** Waits until `predicate` holds, checking every few milliseconds; fails after `timeoutMs`. */
async function eventually(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The rules every `ClusterBus` must follow. `createBus` is called twice: the two buses play two
 * server instances of one deployment (for the memory bus, return the same one: one process).
 *
 *     runClusterBusConformance('redis', async () => createRedisClusterBus({ url, keyPrefix }));
 *
 * Channels are made unique per test, so a bus shared with other runs is fine.
 */
export function runClusterBusConformance(name: string, createBus: () => Promise<ClusterBus>): void {
  describe(`ClusterBus conformance: ${name}`, () => {
    let first: ClusterBus;
    let second: ClusterBus;
    beforeAll(async () => {
      first = await createBus();
      second = await createBus();
    });
    afterAll(async () => {
      await first?.close();
      if (second !== first) await second?.close();
    });

    const run = randomUUID().slice(0, 8);
    let counter = 0;
    const channel = () => `conformance-${run}-${++counter}`;

    it('delivers a message published on one instance to a subscriber on another, equal and in order', async () => {
      const topic = channel();
      const received: BusMessage[] = [];
      const unsubscribe = await second.subscribe(topic, (message) => received.push(message));
      const sent = Array.from({ length: 50 }, (_, i) => ({
        type: 'pending',
        id: `cmd-${i}`,
        n: i,
        ok: true,
        none: null,
      }));
      for (const message of sent) await first.publish(topic, message);
      await eventually(() => received.length === sent.length, 'all 50 messages');
      expect(received).toEqual(sent);
      await unsubscribe();
    });

    it('delivers to every subscriber, the publishing instance included, and to no other channel', async () => {
      const topic = channel();
      const other = channel();
      const onFirst: BusMessage[] = [];
      const onSecond: BusMessage[] = [];
      const onOther: BusMessage[] = [];
      const unsubscribers = [
        await first.subscribe(topic, (message) => onFirst.push(message)),
        await second.subscribe(topic, (message) => onSecond.push(message)),
        await second.subscribe(other, (message) => onOther.push(message)),
      ];
      await first.publish(topic, { id: 'a' });
      await eventually(() => onFirst.length === 1 && onSecond.length === 1, 'both subscribers');
      // A message on the other channel after it proves the first one was not sent there.
      await first.publish(other, { id: 'b' });
      await eventually(() => onOther.length === 1, 'the other channel');
      expect(onFirst).toEqual([{ id: 'a' }]);
      expect(onSecond).toEqual([{ id: 'a' }]);
      expect(onOther).toEqual([{ id: 'b' }]);
      for (const unsubscribe of unsubscribers) await unsubscribe();
    });

    it('after unsubscribe a handler gets nothing more, while another subscription on the channel still does', async () => {
      const topic = channel();
      const ended: BusMessage[] = [];
      const kept: BusMessage[] = [];
      const end = await second.subscribe(topic, (message) => ended.push(message));
      const keep = await second.subscribe(topic, (message) => kept.push(message));
      await first.publish(topic, { n: 1 });
      await eventually(() => ended.length === 1 && kept.length === 1, 'the first message');
      await end();
      await first.publish(topic, { n: 2 });
      await first.publish(topic, { n: 3 });
      await eventually(() => kept.length === 3, 'the later messages');
      expect(ended).toEqual([{ n: 1 }]);
      expect(kept.map((message) => message.n)).toEqual([1, 2, 3]);
      await keep();
      // Unsubscribing twice is harmless.
      await keep();
    });

    it('a publish with no subscriber anywhere resolves and is dropped', async () => {
      await expect(first.publish(channel(), { id: 'nobody' })).resolves.toBeUndefined();
    });

    it('resubscribing to a channel after leaving it receives again', async () => {
      const topic = channel();
      const received: BusMessage[] = [];
      await (await second.subscribe(topic, () => undefined))();
      const unsubscribe = await second.subscribe(topic, (message) => received.push(message));
      await first.publish(topic, { id: 'again' });
      await eventually(() => received.length === 1, 'the message after resubscribing');
      expect(received).toEqual([{ id: 'again' }]);
      await unsubscribe();
    });
  });
}
