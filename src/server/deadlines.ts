const MAX_DELAY = 2 ** 31 - 1;
const BUCKET = 100;

/**
 * Deadlines for many items behind one unref'd timer. Items are grouped in 100 ms buckets
 * (rounded up: never early): connections of one peer share its notAfter, so there are few
 * buckets, kept in a min-heap. Removing an item is O(1), so closed connections are not retained.
 */
export class DeadlineQueue<T, R> {
  readonly #buckets = new Map<number, Map<T, R>>();
  readonly #heap: number[] = [];
  readonly #onDue: (item: T, reason: R) => void;
  #timer: NodeJS.Timeout | undefined;
  #armedFor = Number.POSITIVE_INFINITY;

  constructor(onDue: (item: T, reason: R) => void) {
    this.#onDue = onDue;
  }

  /** Schedules `item`; returns the bucket to pass to `remove`. */
  add(at: number, item: T, reason: R): number {
    const bucket = Math.ceil(at / BUCKET) * BUCKET;
    let items = this.#buckets.get(bucket);
    if (items === undefined) {
      items = new Map();
      this.#buckets.set(bucket, items);
      this.#push(bucket);
      if (bucket < this.#armedFor) this.#arm();
    }
    items.set(item, reason);
    return bucket;
  }

  remove(bucket: number, item: T): void {
    const items = this.#buckets.get(bucket);
    if (items === undefined) return;
    items.delete(item);
    if (items.size === 0) this.#buckets.delete(bucket); // its heap entry is skipped when due
  }

  #push(bucket: number): void {
    const heap = this.#heap;
    heap.push(bucket);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as number) <= bucket) break;
      heap[i] = heap[parent] as number;
      heap[parent] = bucket;
      i = parent;
    }
  }

  #pop(): number | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < heap.length && (heap[l] as number) < (heap[smallest] as number)) smallest = l;
      if (r < heap.length && (heap[r] as number) < (heap[smallest] as number)) smallest = r;
      if (smallest === i) break;
      [heap[i], heap[smallest]] = [heap[smallest] as number, heap[i] as number];
      i = smallest;
    }
    return top;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    const next = this.#heap[0];
    if (next === undefined) {
      this.#armedFor = Number.POSITIVE_INFINITY;
      return;
    }
    this.#armedFor = next;
    this.#timer = setTimeout(() => this.#fire(), Math.min(Math.max(next - Date.now(), 0), MAX_DELAY));
    this.#timer.unref();
  }

  #fire(): void {
    const now = Date.now();
    while (this.#heap.length > 0 && (this.#heap[0] as number) <= now) {
      const bucket = this.#pop() as number;
      const items = this.#buckets.get(bucket);
      this.#buckets.delete(bucket);
      if (items !== undefined) for (const [item, reason] of items) this.#onDue(item, reason);
    }
    this.#arm();
  }
}
