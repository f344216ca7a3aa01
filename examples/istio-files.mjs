// The workload's identity from files an agent writes: Istio's agent with OUTPUT_CERTS
// (cert-chain.pem, key.pem, root-cert.pem), cert-manager's csi-driver-spiffe (tls.crt, tls.key,
// ca.crt), or spiffe-helper (svid.pem, svid_key.pem, svid_bundle.pem). The files are watched:
// a rotation on disk becomes the current identity without a restart.
//
//   node examples/istio-files.mjs --dir /etc/istio-output-certs [--preset istio|cert-manager|spiffe-helper]
//   node examples/istio-files.mjs      # no directory: writes Istio-style files to a temp dir, rotates them
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLocalCa, fileIdentity, fileIdentityPresets, verifyPeerChain } from 'sidecarless';

/** Writes an SVID's files as agents do: each to a temporary name, then renamed into place. */
function writeFiles(dir, names, svid, bundle) {
  const files = {
    [names.bundle]: bundle.toPem(),
    [names.key]: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }),
    [names.certChain]: svid.certChainPem(),
  };
  for (const [name, data] of Object.entries(files)) {
    writeFileSync(join(dir, `.${name}.tmp`), data, { mode: 0o600 });
    renameSync(join(dir, `.${name}.tmp`), join(dir, name));
  }
}

/**
 * Waits for the next identity the source publishes, for at most `ms`. The timer also keeps the
 * process alive meanwhile: a source's own watchers and timers never do.
 */
function nextIdentity(identity, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no rotation within ${ms} ms`)), ms);
    const stop = identity.subscribe((next) => {
      clearTimeout(timer);
      stop();
      resolve(next);
    });
  });
}

/**
 * Reads the identity from `dir` (laid out as `preset`); without a directory, plays the agent: a
 * local CA writes the files to a temporary directory and rotates them once. Returns what it saw
 * and a close().
 */
export async function main({ dir, preset = 'istio', log = console.log } = {}) {
  const names = fileIdentityPresets[preset];
  const ca = dir === undefined ? createLocalCa({ trustDomain: 'cluster.local' }) : undefined;
  const workdir = dir ?? mkdtempSync(join(tmpdir(), 'sidecarless-example-'));
  if (ca !== undefined) writeFiles(workdir, names, ca.issue('/ns/demo/sa/boards'), ca.bundle());

  const identity = fileIdentity({ preset, dir: workdir });
  identity.on('error', (err) => log(`files: ${err.code}: ${err.message}`));
  const { svid } = await identity.ready({ timeout: 10_000 });
  log(`running as ${svid.id} from ${join(workdir, names.certChain)}, serial ${svid.leaf.serialNumber}`);

  const rotations = [];
  identity.subscribe(({ svid: rotated, generation }) => {
    rotations.push(rotated.leaf.serialNumber);
    log(`rotated on disk (generation ${generation}): serial ${rotated.leaf.serialNumber}`);
  });

  // The bundle from root-cert.pem anchors peers of our trust domain, and only those.
  const peerChain = ca === undefined ? svid.certificates : ca.issue('/ns/demo/sa/app-ui').certificates;
  const peer = verifyPeerChain(peerChain, identity.current().bundles).id.toString();
  log(`verified peer ${peer}`);

  if (ca !== undefined) {
    const next = nextIdentity(identity);
    writeFiles(workdir, names, ca.issue('/ns/demo/sa/boards'), ca.bundle()); // the agent rotates
    await next;
  }

  const close = async () => {
    await identity.close();
    if (ca !== undefined) {
      await ca.close();
      rmSync(workdir, { recursive: true, force: true });
    }
  };
  return { id: svid.id.toString(), peer, rotations, identity, close, [Symbol.asyncDispose]: close };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { dir: { type: 'string' }, preset: { type: 'string', default: 'istio' } },
  });
  const { close } = await main(values);
  await close();
}
