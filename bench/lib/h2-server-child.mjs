// The server of h2.bench.mjs, in its own process: createMtlsServer({ protocol: 'http2' }), STRICT,
// with the PEM material it is sent. Replies { port } once listening; 'exit' ends it.
import { once } from 'node:events';
import { createMtlsServer, staticIdentity, X509Bundle } from '../../dist/index.js';

const [material] = await once(process, 'message');
const identity = staticIdentity({
  certChain: material.cert,
  key: material.key,
  bundles: X509Bundle.parse('cluster.local', material.ca),
});
const body = Buffer.from('{"items":[1,2,3]}');
const server = createMtlsServer({ identity, mode: 'STRICT', protocol: 'http2' }, (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (message) => {
  if (message === 'exit') process.exit(0);
});
