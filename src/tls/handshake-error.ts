import type { ErrorCode } from '../errors.js';

/**
 * The reason code of a server-side TLS handshake that failed before the gate could look at the
 * peer: what Node and OpenSSL said, in the library's codes. The handshake's own message stays in
 * the event, so nothing is lost.
 */
export function handshakeErrorCode(err: { readonly code?: string | undefined }): ErrorCode {
  switch (err.code) {
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return 'ERR_HANDSHAKE_TIMEOUT';
    // STRICT asks OpenSSL to fail the handshake (with a certificate_required alert) when the
    // client sends no certificate.
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
      return 'ERR_NO_CLIENT_CERTIFICATE';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'ERR_CLIENT_ABORTED';
    default:
      return 'ERR_HANDSHAKE_FAILED';
  }
}
