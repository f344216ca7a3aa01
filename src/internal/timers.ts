// setTimeout caps delays at 2^31-1 ms (about 24.8 days) and fires at once beyond that; CA and
// certificate lifetimes are often longer, so long delays are re-armed in steps.
const MAX_DELAY = 2 ** 31 - 1;

export interface Timer {
  cancel(): void;
}

/** An unref'd timer that fires once `ms` have passed, however long that is. */
export function setLongTimeout(fn: () => void, ms: number): Timer {
  const due = Date.now() + Math.max(0, ms);
  let handle: NodeJS.Timeout;
  const arm = () => {
    const left = due - Date.now();
    handle = setTimeout(left > MAX_DELAY ? arm : fn, Math.min(Math.max(left, 0), MAX_DELAY));
    handle.unref();
  };
  arm();
  return { cancel: () => clearTimeout(handle) };
}
