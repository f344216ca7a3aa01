import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { skipWithout } from '../helpers/programs.js';
import { freePort, startPeer, stopPeers } from './peers.js';

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

// Peers once outlived their test files (haproxy, openssl s_server and Python servers left running
// after every interop run): the cleanup was an afterAll registered from inside a beforeAll, which
// vitest never runs, and a launcher's child survived the launcher's death.
describe.skipIf(skipWithout('python3'))('interop peers are stopped with what they started', () => {
  it('stopPeers kills the peer and the server its launcher started', async () => {
    const port = await freePort();
    // `sh` runs python as its child (the trailing command keeps sh from exec'ing it).
    await startPeer('sh', ['-c', `python3 -m http.server --bind 127.0.0.1 ${port} >/dev/null 2>&1; :`], port);
    expect(await accepts(port)).toBe(true);
    stopPeers();
    let open = true;
    for (let i = 0; i < 100 && open; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      open = await accepts(port);
    }
    expect(open).toBe(false);
  });
});
