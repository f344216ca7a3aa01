// Native memory of reading a client's certificate on a TLS server, per Node release. Node 20's
// getPeerX509Certificate() leaks (RSS grows ~4.5 KB per handshake, without bound); the legacy
// getPeerCertificate(true) does not. src/tls/peer-chain.ts picks the API by this result.
//
//   npm run build && node --expose-gc bench/peer-cert-memory.bench.mjs <nocrl|crl> <none|leaf|walk|legacy|session>
//
// Compare the RSS after 6000 handshakes of `none` (nothing read) with each way of reading.
import { once } from 'node:events';
import tls from 'node:tls';
import { createLocalCa } from '../dist/index.js';

const [crl, walk] = [process.argv[2] === 'crl', process.argv[3] ?? 'none'];
const crlIssuer = createLocalCa({ trustDomain: 'crl.invalid' });
// Any CRL will do here: it only switches OpenSSL's CRL checks on, as the server's no-match CRL does.
const noMatchCrlPem = () => {
  throw new Error('run with nocrl, or pass a CRL file as the fourth argument');
};
const ca = createLocalCa({ trustDomain: 'cluster.local' });
const s = ca.issue('/s'),
  c = ca.issue('/c');
const pk = (x) => x.privateKey.export({ format: 'pem', type: 'pkcs8' });
const srv = tls.createServer({
  key: pk(s),
  cert: s.certChainPem(),
  ca: ca.bundle().toPem(),
  requestCert: true,
  rejectUnauthorized: false,
  ...(crl ? { crl: process.argv[4] ?? noMatchCrlPem() } : {}),
});
srv.on('secureConnection', (sock) => {
  if (walk === 'leaf') {
    void sock.getPeerX509Certificate()?.raw;
  } else if (walk === 'legacy') {
    let x = sock.getPeerCertificate(true);
    const seen = new Set();
    while (x?.raw && !seen.has(x.fingerprint256)) {
      seen.add(x.fingerprint256);
      x = x.issuerCertificate;
    }
  } else if (walk === 'session') {
    // What src/tls/peer-chain.ts's sessionPeerLeafOf reads on Node 20: the session's encoding.
    void sock.getSession();
  } else if (walk === 'walk') {
    let x = sock.getPeerX509Certificate();
    let n = 0;
    while (x && n++ < 5) {
      void x.raw;
      const i = x.issuerCertificate;
      if (!i || i === x) break;
      x = i;
    }
  }
  sock.end();
});
srv.listen(0);
await once(srv, 'listening');
const ctx = tls.createSecureContext({ cert: c.certChainPem(), key: pk(c), ca: ca.bundle().toPem() });
const one = () =>
  new Promise((r) => {
    const k = tls.connect({
      port: srv.address().port,
      host: '127.0.0.1',
      secureContext: ctx,
      checkServerIdentity: () => undefined,
    });
    k.on('data', () => {});
    k.on('close', r);
    k.on('error', () => {});
  });
for (let round = 0; round < 6; round++) {
  for (let i = 0; i < 1000; i++) await one();
  global.gc();
  global.gc();
  if (round % 2 === 1 || round === 0)
    console.log(
      `crl=${crl} walk=${walk} after ${(round + 1) * 1000}: rss ${(process.memoryUsage().rss / 1048576).toFixed(1)} MiB`,
    );
}
srv.close();
await crlIssuer.close();
