// Which modules a child process loads: a module.register() resolve hook posts every URL it
// resolves to the main thread, in order. Used by the import-cost and entry-isolation tests.

/** The hooks module's source: posts each resolved URL to the port `register()` hands it. */
export const RESOLVE_HOOKS = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  port.postMessage(result.url);
  return result;
}
`;

/**
 * Source for the top of a child's ES module: registers the hooks found at `hooksSpecifier` (a
 * JavaScript expression) and defines `globalThis.recordedModules()`, every URL resolved so far.
 * The hooks thread's messages arrive after the imports: a marker module, imported last, is
 * waited for, so every earlier URL is in.
 */
export function moduleRecorder(hooksSpecifier: string): string {
  return `
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const resolved = [];
const waiting = new Map();
port1.on('message', (url) => {
  resolved.push(url);
  waiting.get(url)?.();
});
port1.unref();
register(${hooksSpecifier}, import.meta.url, { data: { port: port2 }, transferList: [port2] });
globalThis.recordedModules = async () => {
  const marker = 'data:text/javascript,export%20default%201;//' + Math.random();
  const arrived = new Promise((resolve) => waiting.set(marker, resolve));
  // Held open until the marker's message arrives (an unref'd port lets the process end first).
  port1.ref();
  await import(marker);
  await arrived;
  port1.unref();
  return resolved.filter((url) => url !== marker);
};
`;
}
