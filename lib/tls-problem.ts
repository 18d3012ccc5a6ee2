// Node's TLS verification failures in words a person acts on: shared by the
// hooks that take a CA from `ca-secret` (elasticsearch, cassandra).

// Node's TLS verification errors: the server answered, but we do not trust it.
const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);
const TLS_OTHER_CODES: Record<string, string> = {
  CERT_HAS_EXPIRED: 'certificate expired',
  CERT_NOT_YET_VALID: 'certificate not yet valid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'certificate does not name this host',
};

/** A TLS failure in words a person acts on, or undefined when the error is not about TLS trust. */
export function tlsProblem(err: unknown, hasCa: boolean): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (TLS_TRUST_CODES.has(code)) {
        return `TLS: certificate not trusted (${code}); ${hasCa ? 'the CA in ca-secret did not sign it' : 'name the CA that signed it in ca-secret'}`;
      }
      if (TLS_OTHER_CODES[code]) return `TLS: ${TLS_OTHER_CODES[code]} (${code})`;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
