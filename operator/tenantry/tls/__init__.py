"""Certificates and domain ownership: the TLS phase's pure decisions, and the DNS lookup it makes (controller/tls.py).

- `certs`: issue a reseller CA and leaf certificates from it (ECDSA P-256, `cryptography`), read a
  certificate's public facts, and validate a supplied `kubernetes.io/tls` Secret with one clear
  reason per failure. No I/O; the clock is a parameter.
- `dns`: the TXT-record ownership proof for custom domains: the token, and the lookup of
  `_tenantry-challenge.<host>` from a configurable resolver (dnspython).
- `decide`: the TLS phase's decisions (which hosts are routed, which certificate each gets, when one
  is renewed), from inputs controller/tls.py gathers; controller/tls.py applies them.

Key custody (DESIGN.md §3, issue 4), decided here (`decide`) and applied by controller/tls.py:

- A reseller's CA key lives only in its control namespace `reseller-<r>` (Secret `tenantry-ca`), which
  only the reseller's admins, the operator and cluster admins can read. Tenant namespaces get leaf
  certificates for their own hosts only, signed by that CA: a tenant owner can read the key of its own
  hosts, never one that can sign or serve anyone else's.
- A reseller region in mode `Secret` whose Secret holds a CA certificate (basicConstraints CA:TRUE)
  issues a per-tenant leaf from it, exactly like SelfSigned: the CA key stays in `reseller-<r>`.
- A reseller region in mode `Secret` whose Secret holds a leaf (typically a wildcard `*.domain`) is
  copied into a tenant namespace only when the tenant has no `spec.owners`: then only the reseller's
  own admins (reseller support) can read that namespace's Secrets. For a tenant with owners the copy is
  refused: its default host is routed without a TLS Secret and `CertificateReady=False`, reason
  `ResellerKeyWithheld`, says to use mode Issuer (a certificate per tenant from cert-manager), a CA
  certificate in the Secret, or SelfSigned. Copying the wildcard key would let one tenant impersonate
  every other tenant of the reseller. When owners are added later, the copy is deleted *before* their
  RoleBinding is applied.
- Keys never appear in logs, events, status or error messages: messages are written here, never the
  text of a parsing exception, and status carries only notAfter, issuer and DNS names.
"""
