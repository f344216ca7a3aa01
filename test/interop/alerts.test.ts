// A server's refusal of our certificate, by the code Node gives OpenSSL's alert: OpenSSL 3.0
// (Node 20) says `sslv3 alert …`/`tlsv1 alert …`, OpenSSL 3.2 and later (Node 22, 24) say
// `ssl/tls alert …`. The real alerts are in client-peers.test.ts (Go's bad_certificate on Node 22
// and 24 is read as a refusal only with both spellings known).
import { describe, expect, it } from 'vitest';
import { certificateAlertOf } from '../../src/client/refusal.js';

describe('certificate alerts, as each OpenSSL spells them', () => {
  it.each([
    ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'bad_certificate'],
    ['ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE', 'bad_certificate'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'unknown_ca'],
    ['ERR_SSL_SSL/TLS_ALERT_UNKNOWN_CA', 'unknown_ca'],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'certificate_required'],
    ['ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_REQUIRED', 'certificate_required'],
    ['ERR_SSL_SSL/TLS_ALERT_ACCESS_DENIED', 'access_denied'],
    ['ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_EXPIRED', 'certificate_expired'],
  ])('%s is %s', (code, alert) => {
    expect(certificateAlertOf(Object.assign(new Error('alert'), { code }))).toBe(alert);
  });

  it.each([
    'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE',
    'ERR_SSL_SSL/TLS_ALERT_PROTOCOL_VERSION',
    'ECONNRESET',
    'ERR_SSL_WRONG_VERSION_NUMBER',
  ])('%s is not a certificate refusal', (code) => {
    expect(certificateAlertOf(Object.assign(new Error('x'), { code }))).toBeUndefined();
  });
});
