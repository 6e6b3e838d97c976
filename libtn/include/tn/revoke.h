/* SPDX-License-Identifier: MIT */
/* Refusing retired certificates: a CRL file of the deployment CA (tls: {crl_file}) and a list
 * of revoked serial numbers, both checked on every handshake and on demand for the peers of
 * established connections (after a reload). */
#ifndef TN_REVOKE_H
#define TN_REVOKE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "tn/tls.h"

/* Loads every CRL in PEM file |crl_file| into |ctx|'s store.  Each must be signed by a CA
 * certificate already in the store and be current (its lastUpdate passed, its nextUpdate not),
 * except an expired one that a later, current CRL of the same CA in the file replaces: that
 * one is skipped (logged), as the handshake would only look at the newer.
 * In a handshake the peer's certificate is then refused when a CRL of its CA lists it, or when
 * that CRL has gone out of date; a CA without a CRL revokes nothing (a CA rotation's new one).
 * Also installs the verify callback that logs why a peer's certificate is refused.  Returns 0
 * or TN_ERR_CONFIG (logged, naming the file). */
int tn_revoke_load_crl(SSL_CTX *ctx, const char *crl_file);

/* Installs the verify callback alone (no CRL): it logs why a certificate is refused and checks
 * the serials given to tn_revoke_set_serials. */
void tn_revoke_install(SSL_CTX *ctx);

/* Refuses the certificates with these serials (hexadecimal, any case, leading zeros allowed)
 * in handshakes on |ctx|; |notes[i]| (may be NULL) is logged with a refusal.  Replaces an
 * earlier list.  Returns 0, or TN_ERR_CONFIG naming the serial that is not hexadecimal. */
int tn_revoke_set_serials(SSL_CTX *ctx, char *const *serials, char *const *notes, size_t n);

/* Whether |peer|'s certificate (its serial and issuer, kept from the handshake) is revoked by
 * |ctx|'s serial list or the newest CRL of its CA, as a handshake would find.  Fills |why|
 * (e.g. "serial 1F in the revoked list (stolen laptop)"). */
bool tn_revoke_check(SSL_CTX *ctx, const struct tn_identity *peer, char *why, size_t whylen);

/* The serial of |cert| in the form above, into |buf| (TN_SERIAL_MAX + 1 bytes); "" when it
 * does not fit. */
void tn_revoke_serial(X509 *cert, char *buf);

#endif
