/* SPDX-License-Identifier: MIT */
/* The management API, on the admin listener under /api/v1/manage/, for a caller holding the
 * bearer token admin.token:
 *   GET    services                  the public ports (as /api/v1/status lists them)
 *   POST   services                  {"proxy", "name", "public_port", "target"}: a services:
 *                                    entry, published at once if the proxy is connected
 *   DELETE services/NAME?proxy=ID    closes that public port (a services: entry goes too)
 *   GET    proxies                   the proxies: rules
 *   POST   proxies                   {"id", "networks": [...], "public_ports"}: a rule
 *   DELETE proxies/ID                its rules go; its sessions drain if their networks are no
 *                                    longer allowed (public ports stay open until it registers
 *                                    again, as after SIGHUP)
 *   DELETE sessions/ID               closes the sessions of that client or proxy identity
 * Changes live in memory only: SIGHUP reads the configuration file again and replaces them, so
 * what must last is written to the file too.  Bodies are JSON, read with the configuration's
 * own tables (JSON is YAML), so they are checked as the file's entries are. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"
#include "tn/admin.h"
#include "tn/conf.h"
#include "tn/err.h"
#include "tn/log.h"

#define PREFIX "/api/v1/manage/"

static void
reply(struct tn_admin_reply *r, int status, const char *msg)
{
    r->status = status;
    r->type = "application/json";
    tn_admin_printf(r, "{\"status\":%d,\"message\":", status);
    tn_admin_json_str(r, msg);
    tn_admin_printf(r, "}\n");
}

static void replyf(struct tn_admin_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
replyf(struct tn_admin_reply *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply(r, status, msg);
}

/* Compares in time that does not depend on where the first difference is. */
static bool
token_ok(const char *want, const char *authorization)
{
    size_t n, len, i;
    unsigned char diff;

    if (authorization == NULL || strncmp(authorization, "Bearer ", 7) != 0)
        return false;
    authorization += 7;
    n = strlen(want);
    len = strlen(authorization);
    /* As long as the token, whatever was given: the time says nothing of where they differ. */
    diff = (unsigned char)(len != n);
    for (i = 0; i < n; i++)
        diff |= (unsigned char)(want[i] ^ (i < len ? authorization[i] : 0));
    return diff == 0;
}

/* Appends |elem| (|size| bytes, its fields taken over) to list |l|.  Returns 0 or -ENOMEM. */
static int
list_push(struct tn_conf_list *l, const void *elem, size_t size)
{
    char *grown = realloc(l->v, (l->n + 1) * size);

    if (grown == NULL)
        return -ENOMEM;
    memcpy(grown + l->n * size, elem, size);
    l->v = grown;
    l->n++;
    return 0;
}

/* Takes element |i| out of list |l| (the caller freed its fields). */
static void
list_drop(struct tn_conf_list *l, size_t i, size_t size)
{
    char *v = l->v;

    memmove(v + i * size, v + (i + 1) * size, (l->n - i - 1) * size);
    l->n--;
}

/* Reads a JSON object into |elem| with |keys|.  Returns 0, or fills |why|. */
static int
body_load(const struct tn_conf_key *keys, void *elem, const struct tn_admin_request *req, char *why,
          size_t whylen)
{
    FILE *err;
    char *text = NULL;
    size_t len = 0;
    int r;

    /* The loader prints its error: catch it for the answer. */
    if ((err = open_memstream(&text, &len)) == NULL) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    r = tn_conf_load_errors(keys, elem, "request", req->body, req->body_len, err);
    fclose(err);
    snprintf(why, whylen, "%.*s", (int)strcspn(text != NULL ? text : "", "\n"),
             text != NULL ? text : "");
    free(text);
    return r;
}

static void
services_post(struct relay *relay, const struct tn_admin_request *req, struct tn_admin_reply *r)
{
    struct service_rule rule = { 0 };
    char why[512];
    int n;

    if (body_load(relay_service_rule_keys, &rule, req, why, sizeof(why)) != 0) {
        reply(r, 400, why);
        goto out;
    }
    if (rule.proxy == NULL || rule.name == NULL || rule.target == NULL || rule.public_port == 0) {
        reply(r, 400, "give proxy, name, public_port and target");
        goto out;
    }
    if ((n = policy_check_service(relay->cfg->services.v, relay->cfg->services.n, &rule, why,
                                  sizeof(why))) != 0) {
        reply(r, n == TN_ERR_PARSE ? 400 : 409, why);
        goto out;
    }
    if ((n = expose_publish_rule(relay, &rule, why, sizeof(why))) < 0) {
        reply(r, 409, why);
        goto out;
    }
    if (list_push(&relay->cfg->services, &rule, sizeof(rule)) != 0) {
        expose_unpublish(relay, rule.proxy, rule.name);
        reply(r, 500, "out of memory");
        goto out;
    }
    tn_log_info("management API (%s, admin token): service %s of proxy %s on port %" PRId64
                " -> %s added (%s; "
                "in memory only: a SIGHUP drops it unless it is in the configuration file)",
                req->peer, rule.name, rule.proxy, rule.public_port, rule.target,
                n > 0 ? "published" : "published when the proxy registers");
    r->status = 201;
    r->type = "application/json";
    tn_admin_printf(r, "{\"status\":201,\"public_port\":%" PRId64 ",\"published\":%s}\n",
                    rule.public_port, n > 0 ? "true" : "false");
    return; /* the list holds its fields now */
out:
    tn_conf_fini(relay_service_rule_keys, &rule);
}

static void
services_delete(struct relay *relay, const char *name, const struct tn_admin_request *req,
                struct tn_admin_reply *r)
{
    const char *query = req->query;
    struct service_rule *rules = relay->cfg->services.v;
    char proxy[TN_ID_MAX + 1] = "";
    bool is_found;
    size_t i;

    if (strncmp(query, "proxy=", 6) == 0)
        snprintf(proxy, sizeof(proxy), "%.*s", (int)strcspn(query + 6, "&"), query + 6);
    if (proxy[0] == '\0') {
        reply(r, 400, "name the proxy: DELETE .../services/NAME?proxy=ID");
        return;
    }
    is_found = expose_unpublish(relay, proxy, name);
    for (i = 0; i < relay->cfg->services.n; i++) {
        if (strcmp(rules[i].proxy, proxy) == 0 && strcmp(rules[i].name, name) == 0) {
            tn_conf_fini(relay_service_rule_keys, &rules[i]);
            list_drop(&relay->cfg->services, i, sizeof(*rules));
            is_found = true;
            break;
        }
    }
    if (!is_found) {
        replyf(r, 404, "no service '%s' of that proxy", name);
        return;
    }
    tn_log_info("management API (%s, admin token): service %s of proxy %s removed (in memory only)",
                req->peer, name, proxy);
    replyf(r, 200, "service '%s' removed", name);
}

static void
services_get(struct relay *relay, struct tn_admin_reply *r)
{
    r->type = "application/json";
    tn_admin_printf(r, "{\"services\":[");
    expose_status(relay, r);
    tn_admin_printf(r, "]}\n");
}

static void
proxies_get(struct relay *relay, struct tn_admin_reply *r)
{
    const struct proxy_rule *rules = relay->cfg->proxies.v;
    char net[TN_CIDR_STRLEN];
    size_t i, j;

    r->type = "application/json";
    tn_admin_printf(r, "{\"proxies\":[");
    for (i = 0; i < relay->cfg->proxies.n; i++) {
        tn_admin_printf(r, "%s{\"id\":", i > 0 ? "," : "");
        tn_admin_json_str(r, rules[i].id);
        tn_admin_printf(r, ",\"networks\":[");
        for (j = 0; j < rules[i].networks.n; j++) {
            tn_admin_printf(r, "%s", j > 0 ? "," : "");
            tn_admin_json_str(r, tn_cidr_format(&rules[i].networks.v[j], net, sizeof(net)));
        }
        tn_admin_printf(r, "],\"public_ports\":");
        tn_admin_json_str(r, rules[i].public_ports != NULL ? rules[i].public_ports : "");
        tn_admin_printf(r, "}");
    }
    tn_admin_printf(r, "]}\n");
}

static void
proxies_post(struct relay *relay, const struct tn_admin_request *req, struct tn_admin_reply *r)
{
    struct proxy_rule rule = { 0 };
    char why[512];

    if (body_load(relay_proxy_rule_keys, &rule, req, why, sizeof(why)) != 0) {
        reply(r, 400, why);
        goto out;
    }
    if (rule.id == NULL) {
        reply(r, 400, "give the proxy's id");
        goto out;
    }
    if (rule.public_ports != NULL &&
        policy_parse_ports(rule.public_ports, &rule.ports, "public_ports") != 0) {
        reply(r, 400, "public_ports is not a list of ports and ranges");
        goto out;
    }
    if (list_push(&relay->cfg->proxies, &rule, sizeof(rule)) != 0) {
        reply(r, 500, "out of memory");
        goto out;
    }
    tn_log_info(
        "management API (%s, admin token): proxy rule for %s added (%zu networks; in memory only)",
        req->peer, rule.id, rule.networks.n);
    session_recheck_policy(relay); /* a first rule ends "any proxy, anything" */
    replyf(r, 201, "rule for proxy '%s' added", rule.id);
    return;
out:
    free(rule.ports.v);
    tn_conf_fini(relay_proxy_rule_keys, &rule);
}

static void
proxies_delete(struct relay *relay, const char *id, const struct tn_admin_request *req,
               struct tn_admin_reply *r)
{
    struct proxy_rule *rules = relay->cfg->proxies.v;
    size_t i, n = 0;

    for (i = 0; i < relay->cfg->proxies.n; i++)
        n += strcmp(rules[i].id, id) == 0;
    if (n > 0 && n == relay->cfg->proxies.n) {
        /* An empty list means "any proxy may announce any network": removing the last rule
         * would open the relay, not close it to this proxy. */
        replyf(r, 409,
               "the rules of proxy '%s' are the last ones, and with no rule any proxy may announce "
               "any network: add another proxy's rule first, or remove its session "
               "(DELETE sessions/%s)",
               id, id);
        return;
    }
    for (i = 0, n = 0; i < relay->cfg->proxies.n;) {
        if (strcmp(rules[i].id, id) != 0) {
            i++;
            continue;
        }
        free(rules[i].ports.v);
        tn_conf_fini(relay_proxy_rule_keys, &rules[i]);
        list_drop(&relay->cfg->proxies, i, sizeof(*rules));
        n++;
    }
    if (n == 0) {
        replyf(r, 404, "no rule for proxy '%s'", id);
        return;
    }
    tn_log_info("management API (%s, admin token): the rules of proxy %s removed (in memory only)",
                req->peer, id);
    session_recheck_policy(relay);
    replyf(r, 200, "rules of proxy '%s' removed", id);
}

static void
sessions_delete(struct relay *relay, const char *id, const struct tn_admin_request *req,
                struct tn_admin_reply *r)
{
    size_t n = session_close_identity(relay, id, "disconnected by the management API");

    if (n == 0) {
        replyf(r, 404, "no session of '%s'", id);
        return;
    }
    tn_log_info("management API (%s, admin token): %zu sessions of %s closed", req->peer, n, id);
    replyf(r, 200, "sessions of '%s' closed", id);
}

static void
manage(void *arg, const struct tn_admin_request *req, struct tn_admin_reply *r)
{
    struct relay *relay = arg;
    const char *what = req->path + strlen(PREFIX), *name;
    bool is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool is_post = strcmp(req->method, "POST") == 0;
    bool is_delete = strcmp(req->method, "DELETE") == 0;

    if (relay->cfg->admin_token == NULL) {
        reply(r, 403, "the management API is off (no admin.token)");
        return;
    }
    if (!token_ok(relay->cfg->admin_token, req->authorization)) {
        tn_log_warnx("management API (%s): %s %s refused: no valid bearer token", req->peer,
                     req->method, req->path);
        reply(r, 401, "a bearer token is needed (Authorization: Bearer TOKEN)");
        return;
    }
    name = strchr(what, '/') != NULL ? strchr(what, '/') + 1 : NULL;
    if (strcmp(what, "services") == 0 && is_get)
        services_get(relay, r);
    else if (strcmp(what, "services") == 0 && is_post)
        services_post(relay, req, r);
    else if (strncmp(what, "services/", 9) == 0 && is_delete && *name != '\0')
        services_delete(relay, name, req, r);
    else if (strcmp(what, "proxies") == 0 && is_get)
        proxies_get(relay, r);
    else if (strcmp(what, "proxies") == 0 && is_post)
        proxies_post(relay, req, r);
    else if (strncmp(what, "proxies/", 8) == 0 && is_delete && *name != '\0')
        proxies_delete(relay, name, req, r);
    else if (strncmp(what, "sessions/", 9) == 0 && is_delete && *name != '\0')
        sessions_delete(relay, name, req, r);
    else
        replyf(r, 404, "no such call: %s", req->path);
}

int
manage_start(struct relay *relay)
{
    relay->admin.api_prefix = PREFIX;
    relay->admin.api = manage;
    relay->admin.api_arg = relay;
    return 0;
}
