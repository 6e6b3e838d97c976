/* SPDX-License-Identifier: MIT */
/* The relay's TLS context with its revocation list, and revoking connected peers on reload. */
#include <stdlib.h>

#include "relay.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/revoke.h"

int
trust_ctx_new(SSL_CTX **out, const struct relay_config *cfg)
{
    const struct revoked_rule *rules = cfg->revoked.v;
    char **serials = NULL, **notes = NULL;
    size_t i, n = cfg->revoked.n;
    int r;

    if ((r = tn_tls_ctx_new(out, &cfg->tls, TN_ROLE_SERVER)) != 0)
        return r;
    if (n > 0 && ((serials = calloc(n, sizeof(*serials))) == NULL ||
                  (notes = calloc(n, sizeof(*notes))) == NULL)) {
        r = TN_ERR_CONFIG;
        tn_log(TN_LOG_ERR, "revoked: out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        serials[i] = rules[i].serial;
        notes[i] = rules[i].note;
    }
    r = tn_revoke_set_serials(*out, serials, notes, n);
out:
    free(serials);
    free(notes);
    if (r != 0) {
        SSL_CTX_free(*out);
        *out = NULL;
    }
    return r;
}

void
trust_recheck(struct relay *relay)
{
    struct session *s;
    char why[256];

    for (s = relay->sessions; s != NULL; s = s->next) {
        const struct tn_identity *peer = tn_h2_peer(s->h2);

        if (peer->role == TN_ROLE_NONE || !tn_revoke_check(relay->tls, peer, why, sizeof(why)))
            continue;
        tn_log_warnx("reload: closing the session of %s %s (%s): %s", tn_role_name(peer->role),
                     peer->id, tn_h2_peer_addr(s->h2), why);
        tn_h2_close(s->h2, "certificate revoked");
    }
}
