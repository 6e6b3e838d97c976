/* SPDX-License-Identifier: MIT */
/* Socket addresses: "host:port" parsing and formatting, and non-blocking socket set-up. */
#ifndef TN_ADDR_H
#define TN_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct tn_ip;

#define TN_ADDR_STRLEN 64 /* "[ffff:...:ffff]:65535" and a NUL */

/* Splits "host:port", "[v6]:port" or ":port" into |host| (may become "") and |port|.
 * Returns 0 or TN_ERR_PARSE. */
int tn_addr_split(const char *hostport, char *host, size_t hostlen, char *port, size_t portlen);

/* Resolves |hostport| (see tn_addr_split; an empty host is the wildcard when |passive|, or
 * loopback otherwise) to the first address getaddrinfo gives.  Returns 0, TN_ERR_PARSE (a name
 * it denies) or -EAGAIN (it cannot answer now), logged with the resolver's reason. */
int tn_addr_resolve(const char *hostport, bool passive, struct sockaddr_storage *out,
                    socklen_t *outlen);
/* The same, up to |max| of the addresses getaddrinfo gives, in its order, into |out| and
 * |lens|: a name with an AAAA and an A record gives two.  Returns how many (at least one), -EAGAIN
 * when the resolver cannot answer now, or TN_ERR_PARSE. */
#define TN_ADDR_MAX_PER_NAME 8
int tn_addr_resolve_all(const char *hostport, bool passive, struct sockaddr_storage *out,
                        socklen_t *lens, size_t max);

/* A port number, 1-65535, written in decimal; 0 when |s| is none. */
unsigned tn_addr_parse_port(const char *s);

/* Parses "a.b.c.d:port" or "[v6]:port": an address, never a name (an IPv4-mapped one is
 * IPv4, see tn_ip_unmap), and a port 1-65535.  Returns 0 or TN_ERR_PARSE. */
int tn_addr_parse_ip(const char *hostport, struct tn_ip *ip, unsigned *port);

/* What tn_addr_resolve_all and tn_lookup_start share.  The host (maybe ""), port and hints
 * getaddrinfo needs for |hostport|, |flags| added to the hints' (AI_NUMERICSERV, SOCK_STREAM).
 * Returns 0 or TN_ERR_PARSE (logged). */
struct addrinfo;
int tn_addr_gai_query(const char *hostport, int flags, char *host, size_t hostlen, char *port,
                      size_t portlen, struct addrinfo *hints);
/* getaddrinfo's answer for |hostport| (its return value |e| and list |res|), as
 * tn_addr_resolve_all returns it; an error is logged, unless |hostport| is NULL. */
int tn_addr_gai_answer(const char *hostport, int e, const struct addrinfo *res,
                       struct sockaddr_storage *out, socklen_t *lens, size_t max);

/* Resolves |host| (a name, an IPv4 address, an IPv6 one with or without brackets) with |port|,
 * as tn_addr_resolve does. */
int tn_addr_resolve_host(const char *host, unsigned port, bool passive,
                         struct sockaddr_storage *out, socklen_t *outlen);

/* Writes "a.b.c.d:port" or "[v6]:port" into |buf| (TN_ADDR_STRLEN bytes) and returns |buf|. */
char *tn_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/* The address and port of |sa| (AF_INET or AF_INET6).  Returns 0 or TN_ERR_PARSE. */
int tn_addr_to_ip(const struct sockaddr *sa, struct tn_ip *ip, unsigned *port);
/* Builds a socket address from |ip| and |port|; returns its length. */
socklen_t tn_addr_from_ip(const struct tn_ip *ip, unsigned port, struct sockaddr_storage *out);

/* What every TCP socket of ours gets: no Nagle delay, and keepalive, so that a host that
 * vanished is noticed after about 60 + 6 * 10 s of silence instead of never.  Accepted sockets
 * inherit both from their listener; tn_addr_listen and tn_addr_connect set them. */
void tn_addr_tcp_options(int fd);

/* A non-blocking, close-on-exec TCP socket listening on |sa|.  Returns the fd or -errno. */
int tn_addr_listen(const struct sockaddr *sa, socklen_t len, int backlog);
/* Starts a non-blocking connect to |sa|; the result comes as writability (check SO_ERROR).
 * Returns the fd or -errno (an immediate failure such as ENETUNREACH). */
int tn_addr_connect(const struct sockaddr *sa, socklen_t len);
/* The pending error of a connecting socket: 0 or -errno. */
int tn_addr_connect_result(int fd);
/* Whether the connect started on |fd| has already ended (connected or failed), without
 * waiting: a target on the same host often answers before connect() returns. */
bool tn_addr_connect_ended(int fd);

/* Connects to |hostport| (resolved as by tn_addr_resolve), waiting at most |timeout_ms|, and
 * returns the connected socket in non-blocking mode, or a negative error (logged). */
int tn_addr_dial(const char *hostport, int timeout_ms);

/* Closes |fd| so that the peer sees a reset (RST) rather than an orderly end. */
void tn_addr_close_reset(int fd);

#endif
