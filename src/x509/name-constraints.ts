import { BlockList, isIP, isIPv4 } from 'node:net';
import { SidecarlessError } from '../errors.js';
import type { CertificateInfo, NameSubtree } from './certificate.js';
import type { DistinguishedName } from './general-name.js';

// RFC 5280 §4.2.1.10. Forms evaluated: URI (its host), DNS, IP, email and directory names. A
// constraint of any other form cannot be evaluated, so the chain is refused (fail closed).

type Form = 'uri' | 'dns' | 'ip' | 'email' | 'dir';

interface Constraint {
  readonly form: Form;
  readonly value: string;
  readonly dir?: readonly string[];
}

function violation(signer: CertificateInfo, signerIndex: number, rule: string): SidecarlessError {
  return new SidecarlessError(
    'ERR_SVID_NAME_CONSTRAINT',
    `name constraints of certificate ${signerIndex} (${signer.label}): ${rule}`,
    { certificate: signer.label, index: signerIndex },
  );
}

function normaliseRdns(name: DistinguishedName): string[] {
  return name.map((rdn) =>
    rdn
      .map((atv) => `${atv.type}=${atv.value.trim().toLowerCase().replace(/\s+/g, ' ')}`)
      .sort()
      .join('+'),
  );
}

function toConstraint(subtree: NameSubtree, signer: CertificateInfo, signerIndex: number): Constraint {
  if (subtree.hasBounds) {
    throw violation(
      signer,
      signerIndex,
      'minimum/maximum in a subtree are not supported (RFC 5280 forbids them)',
    );
  }
  const base = subtree.base;
  if (base.form === 'uri' || base.form === 'dns' || base.form === 'email') {
    return { form: base.form, value: base.value };
  }
  if (base.form === 'ip') {
    // An address and a mask (8 or 16+16 bytes) decode to "a.b.c.d/n"; anything else cannot be evaluated.
    const slash = base.value.lastIndexOf('/');
    if (slash === -1 || isIP(base.value.slice(0, slash)) === 0) {
      throw violation(signer, signerIndex, 'an IP constraint must be an address and a mask');
    }
    return { form: 'ip', value: base.value };
  }
  if (base.form === 'dir') return { form: 'dir', value: '', dir: normaliseRdns(base.name) };
  throw violation(signer, signerIndex, 'a constraint of an unsupported name form cannot be evaluated');
}

function hostOfUri(uri: string): string | undefined {
  const match = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (match === null) return undefined;
  const authority = (match[1] as string).replace(/^.*@/, '');
  return authority.startsWith('[')
    ? authority.slice(0, authority.indexOf(']') + 1)
    : authority.replace(/:\d*$/, '');
}

function matchesDomain(name: string, constraint: string, leadingDotMeansSubdomainsOnly: boolean): boolean {
  const n = name.toLowerCase();
  const c = constraint.toLowerCase();
  if (c === '') return true;
  if (c.startsWith('.')) return n.endsWith(c);
  if (leadingDotMeansSubdomainsOnly) return n === c;
  return n === c || n.endsWith(`.${c}`);
}

function matchesIp(ip: string, cidr: string): boolean {
  const slash = cidr.lastIndexOf('/');
  if (slash === -1) return false;
  const address = cidr.slice(0, slash);
  const prefix = Number(cidr.slice(slash + 1));
  const family = isIPv4(address) ? 'ipv4' : 'ipv6';
  if (isIPv4(ip) !== (family === 'ipv4')) return false;
  const list = new BlockList();
  list.addSubnet(address, prefix, family);
  return list.check(ip, family);
}

function matchesEmail(email: string, constraint: string): boolean {
  const at = email.lastIndexOf('@');
  const domain = email.slice(at + 1).toLowerCase();
  if (constraint.includes('@')) {
    const cAt = constraint.lastIndexOf('@');
    return (
      email.slice(0, at) === constraint.slice(0, cAt) && domain === constraint.slice(cAt + 1).toLowerCase()
    );
  }
  if (constraint.startsWith('.')) return domain.endsWith(constraint.toLowerCase());
  return domain === constraint.toLowerCase();
}

function matchesDir(subject: readonly string[], constraint: readonly string[]): boolean {
  if (constraint.length > subject.length) return false;
  return constraint.every((rdn, i) => subject[i] === rdn);
}

/** The names of `subject` in one form, as the strings the matchers take. */
function namesOf(subject: CertificateInfo, form: Form): string[] {
  switch (form) {
    case 'uri':
      return [...subject.uris];
    case 'dns':
      return [...subject.dnsNames];
    case 'ip':
      return [...subject.ipAddresses];
    case 'email':
      return [...subject.emails];
    case 'dir':
      return subject.subjectRdns.length === 0 ? [] : ['subject'];
  }
}

function matches(subject: CertificateInfo, form: Form, name: string, c: Constraint): boolean {
  switch (form) {
    case 'uri': {
      const host = hostOfUri(name);
      return host !== undefined && host !== '' && matchesDomain(host, c.value, true);
    }
    case 'dns':
      return matchesDomain(name, c.value, false);
    case 'ip':
      return matchesIp(name, c.value);
    case 'email':
      return matchesEmail(name, c.value);
    case 'dir':
      return matchesDir(normaliseRdns(subject.subjectRdns), c.dir ?? []);
  }
}

const FORMS: readonly Form[] = ['uri', 'dns', 'ip', 'email', 'dir'];

/**
 * Checks the names of `subject` (its SANs and subject DN) against the name constraints of
 * `signer`. Throws `ERR_SVID_NAME_CONSTRAINT` naming the signer and the name.
 */
export function checkNameConstraints(
  signer: CertificateInfo,
  signerIndex: number,
  subject: CertificateInfo,
  subjectIndex: number,
): void {
  const nc = signer.nameConstraints;
  if (nc === undefined) return;
  const permitted = nc.permitted.map((s) => toConstraint(s, signer, signerIndex));
  const excluded = nc.excluded.map((s) => toConstraint(s, signer, signerIndex));
  for (const form of FORMS) {
    const allowed = permitted.filter((c) => c.form === form);
    const denied = excluded.filter((c) => c.form === form);
    if (allowed.length === 0 && denied.length === 0) continue;
    for (const name of namesOf(subject, form)) {
      const shown = form === 'dir' ? `subject "${subject.subject}"` : `${form} name "${name}"`;
      // A name the constraints of its form cannot be evaluated against is refused, not skipped.
      if ((form === 'uri' && !hostOfUri(name)) || (form === 'ip' && isIP(name) === 0)) {
        throw violation(
          signer,
          signerIndex,
          `${shown} of certificate ${subjectIndex} cannot be checked against ${form} constraints`,
        );
      }
      if (denied.some((c) => matches(subject, form, name, c))) {
        throw violation(
          signer,
          signerIndex,
          `${shown} of certificate ${subjectIndex} is in an excluded subtree`,
        );
      }
      if (allowed.length > 0 && !allowed.some((c) => matches(subject, form, name, c))) {
        throw violation(
          signer,
          signerIndex,
          `${shown} of certificate ${subjectIndex} is outside the permitted subtrees`,
        );
      }
    }
  }
}
