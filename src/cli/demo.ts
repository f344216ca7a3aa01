// `sidecarless demo`: the OpenShift Service Mesh lab replayed on loopback with the embedded CA.
// The lab's services are boards (GET /shareditems) and app-ui (its caller); a rogue pod with no
// identity and an impostor with another service account's SVID try to get in. Each step prints
// its evidence and checks it: the demo fails (exit 1) when any step does not behave.
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fetch } from 'undici';
import {
  type AuthorizationEvent,
  createLocalCa,
  createMtlsDispatcher,
  createMtlsServer,
  type IdentitySource,
  type LocalCa,
  type MtlsHttpServer,
  type MtlsMode,
  type PeerEvent,
} from '../index.js';
import { CHECK_LISTENER_HEADERS, checkPort, parseTarget } from './check.js';
import { type Output, table } from './output.js';

const TD = 'cluster.local';
const NS = '/ns/microservices-demo/sa';
const ID = {
  boards: `spiffe://${TD}${NS}/boards`,
  appUi: `spiffe://${TD}${NS}/app-ui`,
  other: `spiffe://${TD}${NS}/other`,
  impostor: `spiffe://${TD}${NS}/impostor`,
} as const;

/** The lab's shared items, as boards serves them. */
const SHARED_ITEMS = [
  {
    _id: '5e5d75b33396fe0043f63e5c',
    owner: 'anonymous',
    type: 'string',
    raw: 'something goes here',
    name: '',
    id: 'MNCkr3mK',
    created_at: '2020-03-02T21:08:03+00:00',
  },
  {
    _id: '5e5d75b63396fe0043f63e5d',
    owner: 'anonymous',
    type: 'string',
    raw: 'another item',
    name: '',
    id: 'x5ORoJu8',
    created_at: '2020-03-02T21:08:06+00:00',
  },
];

/** The lab's authorization: app-ui may read the shared items; any workload of the mesh the rest. */
const AUTHORIZE = { 'GET /shareditems': [ID.appUi], '*': `spiffe://${TD}/*` } as const;

/** One step's record: what it showed, and whether it behaved. */
export interface DemoStep {
  readonly step: number;
  readonly title: string;
  readonly ok: boolean;
  readonly evidence: Record<string, unknown>;
}

interface Boards {
  readonly server: MtlsHttpServer;
  readonly port: number;
  readonly peers: PeerEvent[];
  readonly decisions: AuthorizationEvent[];
}

class Demo {
  readonly ca: LocalCa;
  readonly #closers: (() => Promise<unknown> | unknown)[] = [];

  constructor() {
    this.ca = createLocalCa({ trustDomain: TD });
  }

  identity(id: string, ttl?: number): IdentitySource {
    const source = this.ca.identity(id, ttl === undefined ? {} : { ttl });
    this.#closers.push(() => source.close());
    return source;
  }

  async boards(mode: MtlsMode, identity = this.identity(ID.boards)): Promise<Boards> {
    const server = createMtlsServer(
      {
        identity,
        mode,
        // STRICT with the lab's rule; PERMISSIVE and DISABLE as in the lab, without a policy.
        ...(mode === 'STRICT' ? { authorize: AUTHORIZE } : {}),
        // The impostor step's client refuses the server mid-handshake: nothing waits on it.
        handshakeTimeout: 5_000,
      },
      (req, res) => {
        if (req.url === '/shareditems') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(SHARED_ITEMS));
        } else {
          res.statusCode = 404;
          res.end();
        }
      },
    );
    const peers: PeerEvent[] = [];
    const decisions: AuthorizationEvent[] = [];
    server.on('peer', (e) => peers.push(e));
    server.on('authorization', (e) => decisions.push(e));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return { server, port: (server.address() as AddressInfo).port, peers, decisions };
  }

  /** app-ui's (or another workload's) client, expecting `expect` at 127.0.0.1. */
  client(identity: IdentitySource, expect: string, onServer?: (serial: string) => void) {
    const dispatcher = createMtlsDispatcher({
      identity,
      destinations: { '127.0.0.1': { expect } },
      ...(onServer === undefined ? {} : { onPeer: (peer) => onServer(peer.certificate?.serialNumber ?? '') }),
    });
    this.#closers.push(() => dispatcher.close());
    return dispatcher;
  }

  async close(): Promise<void> {
    for (const close of this.#closers.splice(0).reverse()) await close();
    await this.ca.close();
  }
}

/** The rogue pod's `curl http://boards:8080/shareditems`, with the real curl when there is one. */
function rogueCurl(port: number): Promise<{ exit: number | null; output: string; curl: boolean }> {
  const url = `http://127.0.0.1:${port}/shareditems`;
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '5', url], (err, stdout, stderr) => {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT') {
        // No curl here: the same request from Node shows the same reset.
        fetch(url)
          .then(async (res) => resolve({ exit: 0, output: await res.text(), curl: false }))
          .catch((e: Error & { cause?: { code?: string } }) =>
            resolve({ exit: null, output: `fetch failed: ${e.cause?.code ?? e.message}`, curl: false }),
          );
        return;
      }
      const exit =
        err === null ? 0 : typeof code === 'number' ? code : ((err as { code?: number }).code ?? 1);
      resolve({ exit: exit as number, output: (stderr || stdout).trim(), curl: true });
    });
  });
}

async function status(res: Promise<Response | import('undici').Response>) {
  const r = await res;
  return { status: r.status, body: await r.text() };
}

type Step = (demo: Demo, out: Output) => Promise<DemoStep>;

const STEPS: readonly [string, Step][] = [
  [
    'DISABLE: without mTLS, a rogue pod reads the shared items',
    async (demo, out) => {
      const boards = await demo.boards('DISABLE');
      const { status: code, body } = await status(fetch(`http://127.0.0.1:${boards.port}/shareditems`));
      out.line(`$ curl http://boards:8080/shareditems   ${out.colour.dim('(a pod with no identity)')}`);
      out.line(JSON.stringify(JSON.parse(body), null, 2));
      return {
        step: 1,
        title: '',
        ok: code === 200 && JSON.parse(body).length === SHARED_ITEMS.length,
        evidence: { status: code, items: JSON.parse(body).length },
      };
    },
  ],
  [
    'STRICT: the lab\'s Policy "default" with peers: - mtls: { mode: STRICT }',
    async (demo, out) => {
      const boards = await demo.boards('STRICT');
      const rogue = await rogueCurl(boards.port);
      out.line(`$ curl http://boards:8080/shareditems   ${out.colour.dim('(the rogue pod again)')}`);
      out.line(out.colour.red(rogue.output));
      const appUi = demo.client(demo.identity(ID.appUi), ID.boards);
      const res = await status(fetch(`http://127.0.0.1:${boards.port}/shareditems`, { dispatcher: appUi }));
      const peer = boards.peers.at(-1);
      out.line(
        `app-ui (fetch through createMtlsDispatcher): HTTP ${res.status}, ${JSON.parse(res.body).length} items`,
      );
      out.line(`boards saw ${peer?.id} over ${peer?.mtls ? out.colour.green('mTLS') : 'plaintext'}`);
      const reset = rogue.curl
        ? rogue.exit === 56 && /reset by peer/.test(rogue.output)
        : /ECONNRESET/.test(rogue.output);
      return {
        step: 2,
        title: '',
        ok: reset && res.status === 200 && peer?.mtls === true && peer.id === ID.appUi,
        evidence: { rogue, appUi: { status: res.status, peer: peer?.id ?? null, mtls: peer?.mtls ?? false } },
      };
    },
  ],
  [
    "Secure naming: an impostor on boards' address is refused by app-ui",
    async (demo, out) => {
      const impostor = await demo.boards('STRICT', demo.identity(ID.impostor));
      const appUi = demo.client(demo.identity(ID.appUi), ID.boards);
      let error: { code?: string; message: string } | undefined;
      try {
        await status(fetch(`http://127.0.0.1:${impostor.port}/shareditems`, { dispatcher: appUi }));
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message: string } }).cause;
        error = {
          ...(cause?.code === undefined ? {} : { code: cause.code }),
          message: cause?.message ?? String(err),
        };
      }
      out.line(`app-ui expects ${ID.boards}`);
      out.line(`the server at boards' address presents ${ID.impostor}`);
      out.line(out.colour.red(`refused before any request byte: ${error?.code} ${error?.message}`));
      return {
        step: 3,
        title: '',
        ok:
          error?.code === 'ERR_PEER_ID_MISMATCH' &&
          error.message.includes(ID.impostor) &&
          error.message.includes(ID.boards) &&
          impostor.peers.every((p) => p.id === ID.appUi),
        evidence: { expected: ID.boards, presented: ID.impostor, error: error ?? null },
      };
    },
  ],
  [
    'Authorization: sa/other has a valid SVID, and no rule lets it read the shared items',
    async (demo, out) => {
      const boards = await demo.boards('STRICT');
      const other = demo.client(demo.identity(ID.other), ID.boards);
      const res = await status(fetch(`http://127.0.0.1:${boards.port}/shareditems`, { dispatcher: other }));
      const decision = boards.decisions.at(-1);
      out.line(`sa/other: HTTP ${res.status} ${res.body}`);
      out.line(
        `boards: ${decision?.peer} ${decision?.method} ${decision?.path}: ${decision?.reason} (rule ${JSON.stringify(decision?.rule)})`,
      );
      return {
        step: 4,
        title: '',
        ok:
          res.status === 403 &&
          JSON.parse(res.body).reason === 'peer_not_allowed' &&
          decision?.peer === ID.other,
        evidence: { status: res.status, body: JSON.parse(res.body), rule: decision?.rule ?? null },
      };
    },
  ],
  [
    'PERMISSIVE: plaintext and mTLS on one port while migrating',
    async (demo, out) => {
      const boards = await demo.boards('PERMISSIVE');
      const rogue = await status(fetch(`http://127.0.0.1:${boards.port}/shareditems`));
      const appUi = demo.client(demo.identity(ID.appUi), ID.boards);
      const mtls = await status(fetch(`http://127.0.0.1:${boards.port}/shareditems`, { dispatcher: appUi }));
      const edges = new Map<string, { mtls: boolean; requests: number }>();
      for (const d of boards.decisions) {
        const source = d.peer ?? 'unauthenticated';
        const edge = edges.get(source) ?? { mtls: d.mtls, requests: 0 };
        edge.requests++;
        edges.set(source, edge);
      }
      out.line(`rogue pod: HTTP ${rogue.status}; app-ui: HTTP ${mtls.status}`);
      for (const line of table([
        ['SOURCE', 'DESTINATION', 'mTLS', 'REQUESTS'],
        ...[...edges].map(([source, e]) => [
          source,
          ID.boards,
          e.mtls ? out.colour.green('yes (locked)') : out.colour.red('no (plaintext)'),
          String(e.requests),
        ]),
      ]))
        out.line(line);
      const list = [...edges].map(([source, e]) => ({ source, destination: ID.boards, ...e }));
      return {
        step: 5,
        title: '',
        ok:
          rogue.status === 200 &&
          mtls.status === 200 &&
          edges.get('unauthenticated')?.mtls === false &&
          edges.get(ID.appUi)?.mtls === true,
        evidence: { edges: list },
      };
    },
  ],
  [
    'Rotation: short-lived SVIDs rotate under steady app-ui traffic',
    async (demo, out) => {
      // 2 s SVIDs, re-issued at half their life, as Istio does at half of 24 h.
      const boards = await demo.boards('STRICT', demo.identity(ID.boards, 2_000));
      const updates: number[] = [];
      boards.server.on('identityUpdate', (e) => updates.push(e.generation));
      const serverSerials = new Set<string>();
      const appUi = demo.client(demo.identity(ID.appUi, 2_000), ID.boards, (serial) =>
        serverSerials.add(serial),
      );
      let ok = 0;
      let failed = 0;
      const until = Date.now() + 3_500;
      while (Date.now() < until && ok + failed < 2_000) {
        try {
          // A new connection each time, so every handshake shows the SVIDs in force.
          const res = await status(
            fetch(`http://127.0.0.1:${boards.port}/shareditems`, {
              dispatcher: appUi,
              headers: { connection: 'close' },
            }),
          );
          if (res.status === 200) ok++;
          else failed++;
        } catch {
          failed++;
        }
      }
      const clientSerials = new Set(boards.peers.map((p) => p.serial));
      out.line(`boards' SVID generations applied: ${updates.join(', ') || 'none'}`);
      out.line(`SVIDs seen: boards ${serverSerials.size}, app-ui ${clientSerials.size}`);
      out.line(
        `${ok} requests, ${failed === 0 ? out.colour.green('0 failed requests') : out.colour.red(`${failed} failed requests`)}`,
      );
      return {
        step: 6,
        title: '',
        ok: failed === 0 && updates.length >= 2 && serverSerials.size >= 2 && clientSerials.size >= 2,
        evidence: {
          requests: ok,
          failed,
          generations: updates,
          serverSvids: serverSerials.size,
          clientSvids: clientSerials.size,
        },
      };
    },
  ],
  [
    'Listener tables: `server.describe()` as `istioctl experimental authz check` showed it, then `sidecarless check` from outside',
    async (demo, out) => {
      const boards = await demo.boards('STRICT');
      const report = boards.server.describe();
      const rules = boards.server.policy?.describe().authorize.length ?? 0;
      const address = report.address as AddressInfo;
      const secondsLeft =
        report.notAfter === null ? 0 : Math.round((report.notAfter.getTime() - Date.now()) / 1000);
      const rows = [
        ['LISTENER', 'CERTIFICATE', 'mTLS (MODE)', 'RBAC (RULES)'],
        [
          `${address.address}_${address.port}`,
          `${report.id} (expires in ${secondsLeft} s)`,
          report.mode === 'DISABLE' ? `no (${report.mode})` : `yes (${report.mode})`,
          rules > 0 ? `yes (${rules} rules)` : 'no (none)',
        ],
      ];
      for (const line of table(rows)) out.line(line);
      const described = report.mode === 'STRICT' && report.id === ID.boards && rules === 2;

      // From outside: the code of `sidecarless check <host:port>` (src/cli/check.ts), as app-ui
      // with its SVID, infers each port's mode from three probes.
      const identity = { source: demo.identity(ID.appUi), from: "app-ui's SVID from the demo CA" };
      const ports: [MtlsMode, number][] = [
        ['STRICT', boards.port],
        ['PERMISSIVE', (await demo.boards('PERMISSIVE')).port],
      ];
      const results = [];
      for (const [configured, port] of ports) {
        const target = parseTarget(`127.0.0.1:${port}`, '/shareditems');
        const result = await checkPort(target, {
          identity,
          expect: ID.boards,
          timeout: 5_000,
          colour: out.colour,
        });
        results.push({ configured, port, result });
      }
      out.line(
        `$ sidecarless check 127.0.0.1:${ports[0]?.[1]} --path /shareditems   ${out.colour.dim("(as app-ui; then boards' PERMISSIVE port)")}`,
      );
      for (const line of table([
        CHECK_LISTENER_HEADERS,
        ...results.map((r) => Object.values(r.result.listener)),
      ]))
        out.line(line);
      for (const { configured, result } of results) {
        out.line(
          `${configured} port: ${result.mode === configured ? out.colour.green(result.mode) : out.colour.red(result.mode)}: ${result.document.reason}`,
        );
      }
      return {
        step: 7,
        title: '',
        ok: described && results.every((r) => r.result.ok && r.result.mode === r.configured),
        evidence: {
          listener: rows[1],
          checks: results.map((r) => ({
            configured: r.configured,
            inferred: r.result.mode,
            ok: r.result.ok,
            listener: r.result.listener,
          })),
        },
      };
    },
  ],
];

/** Runs the demo; returns the exit code (0 when every step behaved). */
export async function runDemo(out: Output): Promise<number> {
  const demo = new Demo();
  const steps: DemoStep[] = [];
  const started = Date.now();
  try {
    for (const [i, [title, run]] of STEPS.entries()) {
      out.line();
      out.line(out.colour.bold(`${i + 1}. ${title}`));
      let record: DemoStep;
      try {
        record = { ...(await run(demo, out)), title };
      } catch (err) {
        record = { step: i + 1, title, ok: false, evidence: { error: (err as Error).message } };
        out.line(out.colour.red(`error: ${(err as Error).message}`));
      }
      steps.push(record);
      out.line(
        record.ok ? out.colour.green('   ✔ as in the lab') : out.colour.red('   ✘ this step did not behave'),
      );
    }
  } finally {
    await demo.close();
  }
  const ok = steps.every((s) => s.ok);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  out.line();
  out.line(
    ok ? `All ${steps.length} steps behaved (${seconds} s).` : `Some steps did not behave (${seconds} s).`,
  );
  out.document({ ok, seconds: Number(seconds), steps });
  return ok ? 0 : 1;
}
