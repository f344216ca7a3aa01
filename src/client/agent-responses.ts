// What an mTLS agent does to each response before any application listener runs: records the
// server's Peer on it, and removes a server's own x-sidecarless-peer-id from every place an
// application can read response headers.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { peerOf, setPeer } from '../tls/peer-registry.js';
import { responded } from './client-edges.js';
import { hasPeerHeader, PEER_ID_HEADER, stripped } from './peer-handler.js';

/**
 * Removes ours from a message's headers (or trailers) in each of Node's forms. Node computes
 * `headers` and `headersDistinct` (`trailers`, `trailersDistinct`) lazily from the raw list and a
 * count kept aside, so both are materialised before the raw list gets shorter (the lazy getters
 * would read past its end).
 */
function clean(message: http.IncomingMessage, part: 'headers' | 'trailers'): void {
  const rawField = part === 'headers' ? 'rawHeaders' : 'rawTrailers';
  if (!hasPeerHeader(message[rawField])) return;
  delete message[part][PEER_ID_HEADER];
  delete message[part === 'headers' ? 'headersDistinct' : 'trailersDistinct'][PEER_ID_HEADER];
  message[rawField] = stripped(message[rawField]);
}

/** Trailers, which Node sets just before `end`. */
function cleanTrailers(this: http.IncomingMessage): void {
  clean(this, 'trailers');
}

function onResponse(this: http.ClientRequest, res: http.IncomingMessage): void {
  // On the request and its response, not only on the socket: a kept-alive socket is detached
  // from both once the response ends, and callers (axios, got) look at the response later.
  const peer = peerOf(res.socket as object);
  responded(res.socket, res.statusCode ?? 0);
  if (peer !== undefined) {
    setPeer(res, peer);
    setPeer(this, peer);
  }
  clean(res, 'headers');
  res.prependListener('end', cleanTrailers);
  // Node discards the body of a response nobody listens for; this listener must not change that.
  if (this.listenerCount('response') === 1) res.resume();
}

/** What Node passes 'information' listeners: a plain object built from the 1xx message. */
interface Information {
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
}

function onInformation(info: Information): void {
  if (!hasPeerHeader(info.rawHeaders)) return;
  delete info.headers[PEER_ID_HEADER];
  info.rawHeaders = stripped(info.rawHeaders);
}

function upgradeListener(event: 'upgrade' | 'connect') {
  return function onUpgrade(this: http.ClientRequest, res: http.IncomingMessage, socket: Duplex): void {
    clean(res, 'headers');
    // Node destroys the socket of an upgrade (or CONNECT) nobody listens for; with this listener
    // alone it would stay open, so it is closed here as Node would have.
    if (this.listenerCount(event) === 1) socket.destroy();
  };
}

const onUpgrade = upgradeListener('upgrade');
const onConnect = upgradeListener('connect');

/**
 * Registers, ahead of every application listener (the `https.get(url, cb)` callback is
 * registered before the agent sees the request): the server's Peer on the response, and the
 * removal of the server's peer header from the response, its trailers, 1xx responses and
 * 101/CONNECT responses. Shared listeners: this runs on every request.
 */
export function watchResponses(req: http.ClientRequest): void {
  req.prependListener('response', onResponse);
  req.prependListener('information', onInformation as (info: http.InformationEvent) => void);
  req.prependListener('upgrade', onUpgrade);
  req.prependListener('connect', onConnect);
}
