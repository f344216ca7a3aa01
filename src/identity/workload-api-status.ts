import { type ErrorCode, SidecarlessError } from '../errors.js';
import { DEFAULT_READY_TIMEOUT } from './publisher.js';
import type { WorkloadApiMethod } from './workload-api-proto.js';
import type { StreamEnd } from './workload-api-stream.js';

// The errors the Workload API sources report about the stream itself. Each names the address and
// the gRPC status, so an operator can tell "no agent" from "not registered" from "bad message".

/** A call that ended and will be retried. */
export function streamError(address: string, method: WorkloadApiMethod, end: StreamEnd): SidecarlessError {
  return new SidecarlessError(
    'ERR_WORKLOAD_API_UNAVAILABLE',
    `the Workload API at ${address} ended ${method}: ${end.description}; retrying with backoff`,
    { field: 'address', value: address },
  );
}

/** What `ready()` knew when it timed out. */
export interface ReadyState {
  readonly what: string;
  readonly address: string;
  readonly timeout: number | undefined;
  readonly calls: number;
  readonly lastEnd: StreamEnd | undefined;
  /** The last discarded message since the last good one. */
  readonly lastInvalid: SidecarlessError | undefined;
  /** Which came last: a discarded message or a stream end. */
  readonly lastProblem: 'invalid' | 'end' | undefined;
  readonly withdrawn: string | undefined;
}

/**
 * The error of a `ready()` that timed out. Its code says what went wrong last: the stream kept
 * failing (`ERR_WORKLOAD_API_UNAVAILABLE`), the messages were invalid
 * (`ERR_WORKLOAD_API_RESPONSE_INVALID`), or nothing came at all (`ERR_TIMEOUT`). @internal
 */
export function readyError(state: ReadyState): SidecarlessError {
  const timeout = state.timeout ?? DEFAULT_READY_TIMEOUT;
  const status =
    state.lastEnd === undefined
      ? 'no gRPC status yet (the call is open, the agent has sent nothing usable)'
      : `last gRPC status ${state.lastEnd.description}`;
  const parts = [`${status}, ${state.calls} call(s)`];
  if (state.lastInvalid !== undefined) parts.push(`last message discarded: ${state.lastInvalid.message}`);
  if (state.withdrawn !== undefined) parts.push(`identity withdrawn: ${state.withdrawn}`);
  let code: ErrorCode = 'ERR_TIMEOUT';
  if (state.lastProblem === 'end') code = 'ERR_WORKLOAD_API_UNAVAILABLE';
  else if (
    state.lastProblem === 'invalid' &&
    state.lastInvalid?.code === 'ERR_WORKLOAD_API_RESPONSE_INVALID'
  ) {
    code = 'ERR_WORKLOAD_API_RESPONSE_INVALID';
  }
  return new SidecarlessError(
    code,
    `no ${state.what} from the Workload API at ${state.address} after ${timeout} ms: ${parts.join('; ')}`,
    { field: 'address', value: state.address },
    state.lastInvalid === undefined ? undefined : { cause: state.lastInvalid },
  );
}
