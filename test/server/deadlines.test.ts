import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineQueue } from '../../src/server/deadlines.js';

describe('DeadlineQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires items at their deadline (rounded up to 100 ms, never early), in time order', () => {
    const due: string[] = [];
    const queue = new DeadlineQueue<string, string>((item, reason) => due.push(`${item}:${reason}`));
    queue.add(1_003_500, 'c', 'late');
    queue.add(1_001_210, 'a', 'soon');
    queue.add(1_001_290, 'b', 'soon'); // the same 100 ms bucket as 'a'
    vi.advanceTimersByTime(1_209);
    expect(due).toEqual([]);
    vi.advanceTimersByTime(91); // 1 001 300: the bucket of a and b
    expect(due).toEqual(['a:soon', 'b:soon']);
    vi.advanceTimersByTime(2_199);
    expect(due).toEqual(['a:soon', 'b:soon']);
    vi.advanceTimersByTime(1); // 1 003 500
    expect(due).toEqual(['a:soon', 'b:soon', 'c:late']);
  });

  it('forgets removed items, so closed connections are not kept until their deadline', () => {
    const due: string[] = [];
    const queue = new DeadlineQueue<string, string>((item) => due.push(item));
    const bucket = queue.add(1_005_000, 'closed', 'x');
    queue.add(1_005_000, 'open', 'x');
    queue.remove(bucket, 'closed');
    const empty = queue.add(1_009_000, 'gone', 'x');
    queue.remove(empty, 'gone');
    vi.advanceTimersByTime(10_000);
    expect(due).toEqual(['open']);
  });

  it('keeps working for items added after a bucket was emptied and re-created', () => {
    const due: string[] = [];
    const queue = new DeadlineQueue<string, string>((item) => due.push(item));
    const bucket = queue.add(1_002_000, 'a', 'x');
    queue.remove(bucket, 'a');
    queue.add(1_002_000, 'b', 'x');
    vi.advanceTimersByTime(3_000);
    expect(due).toEqual(['b']);
  });
});
