// The connection door, shared by every protocol: a new TCP socket is sniffed, `admitConnection`
// decides what it may be, a TLS handshake runs under the library's control and `admitTls`
// decides on its peer. Only then is the socket delivered to the protocol layer.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ErrorCode } from '../errors.js';
import { admitConnection } from '../policy/admission.js';
import { handshakeErrorCode } from '../tls/handshake-error.js';
import type { Connection } from './connections.js';
import type { DoorProtocol } from './doors.js';
import { type DoorHandlers, releaseTlsSocket, startTlsHandshake, wrapEmit } from './listener.js';
import type { ServerCore } from './server-core.js';
import { sniff } from './sniff.js';

/** What a protocol does with an admitted connection. */
export interface Delivery {
  /** ALPN protocols offered, in order of preference. */
  readonly alpn: readonly string[];
  /** Whether plaintext HTTP/2 with prior knowledge is looked for. */
  readonly h2c: boolean;
  /** An admitted TLS connection (its socket released from the handshake). */
  tls(connection: Connection, socket: TLSSocket): void;
  /** An admitted plaintext connection: the protocol admits it on the object it reads from. */
  plaintext(raw: Socket, kind: 'http1' | 'h2c', limited: boolean): void;
}

/**
 * Refuses what a door the table lacks tried to hand out: each carried socket, stream or session
 * is destroyed, and the refusal reported. Fail closed: a Node release with a new door never
 * delivers through it unchecked.
 */
export function refuseUnknownDoor(core: ServerCore, event: string, carried: readonly object[]): void {
  for (const object of carried) {
    const destroyable = object as { destroy?: () => void; socket?: Socket | null };
    const raw = destroyable.socket ?? (object as Socket);
    if (typeof (raw as Socket).resetAndDestroy === 'function' && 'remoteAddress' in raw) {
      core.reject(
        raw as Socket,
        'connection',
        'ERR_DOOR_UNKNOWN',
        `Node emitted ${JSON.stringify(event)}, which the door table does not know: refused`,
        null,
        null,
        'destroy',
      );
    } else {
      core.rejectInfo(
        {},
        'connection',
        'ERR_DOOR_UNKNOWN',
        `Node emitted ${JSON.stringify(event)}, which the door table does not know: refused`,
      );
    }
    destroyable.destroy?.();
  }
}

const handlersOfCore = new WeakMap<ServerCore, DoorHandlers>();

/** The door handlers of an accepted socket: only the unknown-door refusal (one object per server). */
function socketHandlers(core: ServerCore): DoorHandlers {
  let handlers = handlersOfCore.get(core);
  if (handlers === undefined) {
    handlers = { unknown: (event, carried) => refuseUnknownDoor(core, event, carried) };
    handlersOfCore.set(core, handlers);
  }
  return handlers;
}

/** Takes a new TCP socket through the gate, then hands it to `delivery`. */
export function acceptConnection(
  core: ServerCore,
  raw: Socket,
  protocol: DoorProtocol,
  delivery: Delivery,
): void {
  // The raw socket may error (a reset) before or after the protocol layer takes it.
  raw.on('error', () => {});
  const handlers = socketHandlers(core);
  wrapEmit(raw, 'socket', protocol, handlers);
  const { mode, plaintextPaths, sniffTimeout } = core.settings;
  sniff(
    raw,
    sniffTimeout,
    delivery.h2c,
    (sniffed) => {
      const verdict = admitConnection({
        mode,
        protocol,
        sniffed,
        hasIdentity: core.identity() !== undefined,
        plaintextPaths: plaintextPaths.size > 0,
      });
      if (verdict.admit === false) {
        core.reject(raw, 'sniff', verdict.code, verdict.message, null, null, verdict.end);
      } else if (verdict.admit === 'plaintext') {
        delivery.plaintext(raw, sniffed === 'h2c' ? 'h2c' : 'http1', verdict.limited);
      } else {
        handshake(core, raw, protocol, delivery, verdict.requireCertificate, handlers);
      }
    },
    () =>
      core.reject(
        raw,
        'sniff',
        'ERR_SNIFF_TIMEOUT',
        `no data within ${sniffTimeout} ms`,
        null,
        null,
        'destroy',
      ),
    () => core.aborted(raw, 'sniff'),
  );
}

function handshake(
  core: ServerCore,
  raw: Socket,
  protocol: DoorProtocol,
  delivery: Delivery,
  requireCertificate: boolean,
  handlers: DoorHandlers,
): void {
  const context = core.context();
  if (context === undefined) {
    core.reject(
      raw,
      'sniff',
      'ERR_NO_IDENTITY',
      'the server has no identity: mTLS is refused',
      null,
      null,
      'destroy',
    );
    return;
  }
  const socket = startTlsHandshake(
    raw,
    {
      context,
      requireCertificate,
      ALPNProtocols: delivery.alpn,
      handshakeTimeout: core.settings.handshakeTimeout,
      owner: core.tlsOwner,
    },
    {
      secure(tlsSocket) {
        const connection = core.admitTls(tlsSocket, raw, context);
        if (connection === undefined) return;
        tlsSocket.on('error', () => {});
        releaseTlsSocket(tlsSocket);
        delivery.tls(connection, tlsSocket);
      },
      failed(tlsSocket, err) {
        const code: ErrorCode = handshakeErrorCode(err);
        if (code === 'ERR_CLIENT_ABORTED') {
          core.aborted(raw, 'handshake');
          return;
        }
        if (code === 'ERR_HANDSHAKE_FAILED') {
          const verdict = core.verdictOfFailedHandshake(tlsSocket);
          if (verdict !== undefined) {
            core.reject(
              raw,
              'handshake',
              verdict.code,
              verdict.message,
              verdict.peer,
              verdict.certificate,
              'destroy',
            );
            return;
          }
        }
        const message =
          code === 'ERR_HANDSHAKE_TIMEOUT'
            ? `no TLS handshake within ${core.settings.handshakeTimeout} ms`
            : code === 'ERR_NO_CLIENT_CERTIFICATE'
              ? 'mTLS is required: the client presented no certificate (refused with a TLS alert)'
              : `TLS handshake failed: ${err.code ?? err.message}`;
        core.reject(raw, 'handshake', code, message, null, null, 'destroy');
      },
      aborted() {
        core.aborted(raw, 'handshake');
      },
    },
  );
  // Nothing was emitted yet: TLSSocket starts reading on the next tick.
  wrapEmit(socket, 'socket', protocol, handlers);
}
