/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the relay's handling of the first message of a Connect stream, as
 * server/flow.c runs it: the gRPC reader until the first Frame, which must be an Open; then
 * the checks of server/open.c against access rules, and the endpoints formatted for the log. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"
#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"

static struct relay_config cfg;
static struct access_rule rules[2];

static int
on_data(void *arg, const uint8_t *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
    return TN_ERR_PROTO; /* Data before Open, as flow.c says */
}

static int
on_frame(void *arg, Tunnel__V1__Frame *fr)
{
    Tunnel__V1__Open **open = arg;

    if (fr->kind_case != TUNNEL__V1__FRAME__KIND_OPEN)
        return TN_ERR_PROTO;
    *open = fr->open;
    fr->open = NULL; /* transferred, as in flow.c */
    fr->kind_case = TUNNEL__V1__FRAME__KIND__NOT_SET;
    return TN_GRPC_PAUSE;
}

static void
add_net(struct tn_cidr_list *l, const char *s)
{
    struct tn_cidr c;

    if (tn_cidr_parse(&c, s) != 0 || tn_cidr_list_add(l, &c) != 0)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tn_log_open("fuzz_open", TN_LOG_ERR, TN_LOG_TEXT, NULL);
    rules[0].client = "client-1";
    add_net(&rules[0].networks, "10.0.0.0/8");
    rules[0].ports = "22 80 8000-8100";
    rules[1].client = "*";
    add_net(&rules[1].networks, "fd00::/8");
    cfg.access.v = rules;
    cfg.access.n = 2;
    if (policy_init(&cfg) != 0)
        abort();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const clients[] = { "client-1", "client-2" };
    Tunnel__V1__Open *open = NULL;
    struct tn_grpc_reader rd;
    char src[TN_ADDR_STRLEN], dst[TN_ADDR_STRLEN];
    struct tn_ip ip;
    size_t used = 0, i;
    int r;

    tn_grpc_reader_init(&rd, on_data, on_frame, &open);
    r = tn_grpc_reader_feed(&rd, data, size, &used);
    tn_grpc_reader_fini(&rd);
    if (open == NULL)
        return 0;
    if (r != TN_GRPC_PAUSE || used > size)
        abort(); /* an Open always pauses the reader within the input */
    open_endpoint_format(open->src, src, sizeof(src));
    open_endpoint_format(open->dst, dst, sizeof(dst));
    for (i = 0; i < 2; i++) {
        r = open_check(&cfg, clients[i], open, &ip);
        if (r != 0 && r != TN_ERR_PROTO && r != TN_ERR_AUTH)
            abort();
        if (r == 0 && (ip.family == 0 || strcmp(dst, "?") == 0))
            abort(); /* accepted: it has an address */
    }
    tunnel__v1__open__free_unpacked(open, NULL);
    return 0;
}
