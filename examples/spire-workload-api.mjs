// The workload's identity from a SPIRE agent (or any SPIFFE Workload API), as a sidecar got it
// from its control plane: streamed over the agent's socket, rotated as the agent pushes.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/sockets/agent.sock node examples/spire-workload-api.mjs
//   node examples/spire-workload-api.mjs      # no agent: starts a fake Workload API and rotates it
//
// Shows: ready(), the default SVID, subscribe() for rotations, events for what the source
// survived, and verifyPeerChain against the bundles the agent sends.
import { fileURLToPath } from 'node:url';
import { verifyPeerChain, workloadApiIdentity } from 'sidecarless';
import { createFakeWorkloadApi } from 'sidecarless/testing';

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
 * Connects to the Workload API at `address` (default: SPIFFE_ENDPOINT_SOCKET; without either, a
 * fake one backed by a local CA), prints the identity, follows one rotation when it drives the
 * fake, and returns what it saw with a close().
 */
export async function main({ address = process.env.SPIFFE_ENDPOINT_SOCKET, log = console.log } = {}) {
  const fake =
    address === undefined
      ? await createFakeWorkloadApi({ trustDomain: 'cluster.local', svids: ['/ns/demo/sa/boards'] })
      : undefined;
  const identity = workloadApiIdentity({ address: address ?? fake.address });
  // Discarded messages, reconnections and withdrawals are reported, never silent.
  identity.on('error', (err) => log(`workload API: ${err.code}: ${err.message}`));
  identity.on('withdrawn', (err) => log(`identity withdrawn: ${err.message}`));

  const { svid, bundles } = await identity.ready({ timeout: 10_000 });
  const domains = bundles.trustDomains().map((td) => td.name);
  log(`running as ${svid.id}, serial ${svid.leaf.serialNumber}, trusting ${domains.join(', ')}`);

  const rotations = [];
  identity.subscribe(({ svid: rotated, generation }) => {
    rotations.push(rotated.leaf.serialNumber);
    log(
      `rotated (generation ${generation}): serial ${rotated.leaf.serialNumber}, until ${rotated.notAfter.toISOString()}`,
    );
  });

  // A peer's chain is checked against the bundle of the peer's own trust domain, as the mTLS
  // server does on every handshake. Against a real agent, check our own SVID.
  const peerChain = fake === undefined ? svid.certificates : fake.ca.issue('/ns/demo/sa/app-ui').certificates;
  const peer = verifyPeerChain(peerChain, identity.current().bundles).id.toString();
  log(`verified peer ${peer}`);

  if (fake !== undefined) {
    const next = nextIdentity(identity);
    fake.rotate(); // what the agent does at half the SVID's lifetime
    await next;
  }

  const close = async () => {
    await identity.close();
    await fake?.close();
  };
  return { id: svid.id.toString(), peer, rotations, identity, close, [Symbol.asyncDispose]: close };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { close } = await main();
  await close();
}
