/** Bounded queues and the batches cut from them. */

import { randomUUID } from "node:crypto";

/** A FIFO that refuses (and counts) items once `maxSize` are waiting. */
export class BoundedQueue<T> {
  dropped = 0;
  private items: T[] = [];
  private head = 0;

  constructor(readonly maxSize: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Queue `item`; false (and one more drop counted) when full. */
  add(item: T): boolean {
    if (this.items.length - this.head >= this.maxSize) {
      this.dropped++;
      return false;
    }
    this.items.push(item);
    return true;
  }

  /** Remove and return up to `limit` of the oldest items. */
  take(limit: number): T[] {
    const end = Math.min(this.head + limit, this.items.length);
    const out = this.items.slice(this.head, end);
    this.head = end;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  /** Drop everything still waiting, counting it; return how many items that was. */
  abandon(): number {
    const count = this.length;
    this.items = [];
    this.head = 0;
    this.dropped += count;
    return count;
  }
}

export type Kind = "exposures" | "events";

/** One upload: its body, serialised once, and the Idempotency-Key kept across retries. */
export class Batch {
  readonly idempotencyKey = randomUUID().replaceAll("-", "");
  failures = 0;

  constructor(
    readonly kind: Kind,
    readonly size: number,
    readonly body: string,
  ) {}

  get path(): string {
    return `/v1/${this.kind}`;
  }
}
