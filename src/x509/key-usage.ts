/**
 * keyUsage bits (RFC 5280 §4.2.1.3) as numbers: bit n of the BIT STRING is 2^n, the values
 * @peculiar/asn1-x509's `KeyUsageFlags` has, kept here so that reading a certificate loads no
 * ASN.1 library.
 */
export const KeyUsageFlags = {
  digitalSignature: 1,
  nonRepudiation: 2,
  keyEncipherment: 4,
  dataEncipherment: 8,
  keyAgreement: 16,
  keyCertSign: 32,
  cRLSign: 64,
  encipherOnly: 128,
  decipherOnly: 256,
} as const;
