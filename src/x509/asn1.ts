// @peculiar/asn1-schema and @peculiar/asn1-x509, loaded on first use. Only issuing certificates
// (the local CA, the testing kit, the CLI) builds ASN.1 structures with them; reading
// certificates uses ./der.ts, so a server that never issues never pays for their ~85 modules
// (bench/README.md, "Import cost"). require() rather than import(), as src/client/undici.ts
// does: issuance is synchronous, and the package is one ESM build without top-level await.
import { createRequire } from 'node:module';
import type * as Asn1Schema from '@peculiar/asn1-schema';
import type * as Asn1X509 from '@peculiar/asn1-x509';

let schema: typeof Asn1Schema | undefined;
let x509: typeof Asn1X509 | undefined;

/** @peculiar/asn1-schema, required once, on the first call. */
export function asn1Schema(): typeof Asn1Schema {
  schema ??= createRequire(import.meta.url)('@peculiar/asn1-schema') as typeof Asn1Schema;
  return schema;
}

/** @peculiar/asn1-x509, required once, on the first call. */
export function asn1X509(): typeof Asn1X509 {
  x509 ??= createRequire(import.meta.url)('@peculiar/asn1-x509') as typeof Asn1X509;
  return x509;
}
