/*
 * policy.h - the policy file (libconfig) as an immutable, ref-counted
 * snapshot, and endpoint matching.
 *
 * A snapshot is built whole (parsed, validated, every enabled endpoint's
 * TLS context created) and only then published; connections keep a
 * reference to the snapshot they started under. docs/policy.md documents
 * every option.
 */
#ifndef SECSHIM_POLICY_H
#define SECSHIM_POLICY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "secshim/common.h"
#include "secshim/log.h"
#include "secshim/protocol.h"

#define SS_DEFAULT_CONFIG_PATH "/etc/secshim/secshim.cfg"
#define SS_DEFAULT_HANDSHAKE_TIMEOUT_S 10

/* Every option an endpoint (or defaults) may carry. */
enum ss_opt {
    SS_OPT_NAME,
    SS_OPT_ENABLED,
    SS_OPT_CONNECT,
    SS_OPT_LISTEN,
    SS_OPT_CERTIFICATE,
    SS_OPT_CERTIFICATE_KEY,
    SS_OPT_TRUSTED_CA,
    SS_OPT_TLS_CRL,
    SS_OPT_TLS_MUTUAL,
    SS_OPT_TARGET_NAME_CHECK,
    SS_OPT_TARGET_NAME,
    SS_OPT_SEC_PROTOCOL,
    SS_OPT_TLS_VERSION,
    SS_OPT_PROTOCOL_LIST,
    SS_OPT_CIPHER_LIST,
    SS_OPT_CIPHER_SUITES,
    SS_OPT_HANDSHAKE_TIMEOUT,
    SS_OPT_FIPS140_ENABLED,
    SS_OPT_TLS_UNEXPECTED_EOF,
    SS_OPT_SESSION_RESUMPTION,
    SS_OPT_COUNT
};

/* The option's name as written in the file ("certificate-key"). */
const char *ss_opt_name(enum ss_opt opt);

enum ss_direction {
    SS_DIR_CONNECT, /* outbound: the program connects; we are the client */
    SS_DIR_LISTEN   /* inbound: the program accepts; we are the server */
};

/* The host part of connect = "HOST:PORT" / listen = "ADDR:PORT". */
enum ss_host_kind {
    SS_HOST_ANY,  /* "*" */
    SS_HOST_NAME, /* a DNS name, compared case-insensitively */
    SS_HOST_ADDR, /* an IPv4 or IPv6 address */
    SS_HOST_CIDR  /* an IPv4 or IPv6 prefix */
};

struct ss_host_pattern {
    enum ss_host_kind kind;
    char name[256];          /* SS_HOST_NAME, lower case */
    int family;              /* AF_INET / AF_INET6 for ADDR and CIDR */
    unsigned char addr[16];  /* network order; 4 bytes used for AF_INET */
    unsigned prefix_len;     /* SS_HOST_CIDR; 32/128 for SS_HOST_ADDR */
    uint16_t port;           /* host order, never 0 */
};

struct ss_tlsctx; /* tlsctx.h */

struct ss_endpoint {
    char *name;
    bool enabled;
    enum ss_direction direction;
    char *address;                 /* as written: "db.example:5432" */
    struct ss_host_pattern match;

    char *certificate;             /* comma list of PEM files, or NULL */
    char *certificate_key;
    char *trusted_ca;              /* comma list of PEM files, or NULL */
    char *tls_crl;                 /* comma list of PEM files, or NULL */
    bool tls_mutual;
    bool target_name_check;        /* "host" (true) or "no" (false) */
    char *target_name;             /* overrides the resolved name, or NULL */
    struct ss_proto proto;
    char *cipher_list;             /* TLS <= 1.2, or NULL for the default */
    char *cipher_suites;           /* TLS 1.3, or NULL for the default */
    int handshake_timeout_ms;
    bool fips140_enabled;
    /* "eof" (true): a TCP EOF without close_notify reads as EOF, as
     * before; "error" (false, the default): the read after the data that
     * arrived fails (docs/shim.md, "Truncation"). */
    bool unexpected_eof_is_eof;
    /* Resume TLS sessions (default true): a connect endpoint keeps its
     * sessions in the client cache, a listen endpoint issues tickets
     * (docs/protocols.md, "Sessions"); false: every handshake is full. */
    bool session_resumption;

    /* Where each option came from: the line in the endpoint, or in
     * defaults when inherited; 0 when not set at all. */
    int opt_line[SS_OPT_COUNT];
    int line;                      /* the line of the endpoint's group */

    struct ss_tlsctx *tls;         /* owned; NULL when !enabled */
};

struct ss_policy {
    atomic_int refs;
    char *path;
    enum ss_log_level log_level;
    char *log_file;                /* "stderr", "syslog" or a path */
    bool compat;                   /* compatibility mode it was built with */
    size_t n_endpoints;
    struct ss_endpoint *endpoints; /* in file order */
};

/*
 * Parses and validates path, builds every enabled endpoint's TLS context,
 * and returns a snapshot with one reference in *out. compat is the
 * compatibility mode the verifiers are built with (the shim passes
 * ss_compat_mode()). On failure *out is NULL and err holds one line
 * "FILE:LINE: endpoint 'NAME': option 'OPT': what is wrong" ("defaults:"
 * instead of the endpoint in defaults; "FILE:LINE: what" at the top level).
 * Relative file names are resolved against the policy file's directory and
 * stored resolved. Returns SS_OK, SS_ERR_IO (the file or a file it names
 * cannot be read), SS_ERR_CONFIG, SS_ERR_UNSUPPORTED, SS_ERR_TLS or
 * SS_ERR_NOMEM.
 */
int ss_policy_load(const char *path, bool compat, struct ss_policy **out,
                   struct ss_errbuf *err);

void ss_policy_ref(struct ss_policy *p);
/* Drops a reference; the last one frees the snapshot. NULL is allowed. */
void ss_policy_unref(struct ss_policy *p);

/* An IP socket address as matching compares it. */
struct ss_net_addr {
    int family;              /* AF_INET (IPv4-mapped IPv6 included) or AF_INET6 */
    unsigned char bytes[16]; /* network order; 4 bytes used for AF_INET */
    uint16_t port;           /* host order */
};

/*
 * sa as an ss_net_addr, with an IPv4-mapped IPv6 address (::ffff:a.b.c.d,
 * what a dual-stack socket uses for IPv4 peers and local addresses) turned
 * into the IPv4 address a.b.c.d. The one place that normalisation is made:
 * connect and listen matching, and the shim's address sets, all use it.
 * Returns false for anything that is not a complete AF_INET/AF_INET6
 * address (out is then unspecified).
 */
bool ss_net_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len,
                               struct ss_net_addr *out);

/* Whether a and b are the same address (the ports are not compared). */
bool ss_net_addr_equal(const struct ss_net_addr *a,
                       const struct ss_net_addr *b);

/*
 * Whether the address of a lies in an address pattern: SS_HOST_ANY, or
 * the address or prefix of SS_HOST_ADDR / SS_HOST_CIDR. Always false for
 * SS_HOST_NAME (a name says nothing about addresses by itself). The port
 * is not compared.
 */
bool ss_host_pattern_has_addr(const struct ss_host_pattern *m,
                              const struct ss_net_addr *a);

/* Whether two host names are the same, ignoring case and one trailing
 * dot. NULL equals nothing. */
bool ss_host_name_equal(const char *a, const char *b);

/*
 * Asked by ss_policy_match_connect whether destination a belongs to the
 * address set of ep, a connect endpoint whose host is a name
 * (SS_HOST_NAME). The shim answers from the addresses it resolved for that
 * name (docs/shim.md, "Matching"); the engine itself never resolves.
 */
typedef bool (*ss_name_has_addr_fn)(const struct ss_endpoint *ep,
                                    const struct ss_net_addr *a, void *arg);

/*
 * The endpoint an outbound connection to addr uses, or NULL. The connect
 * endpoints are tried in file order and the first that matches decides:
 * when it is disabled the result is NULL, so a disabled entry keeps a more
 * specific destination plaintext. `*`, address and prefix endpoints match
 * by the (normalised) address; a name endpoint matches when in_set says
 * the address is in its set. in_set is called only when some enabled
 * connect endpoint has addr's port, and only for the name endpoints tried
 * before the decision, so a destination no endpoint can want costs no
 * lookup. in_set NULL: names never match.
 */
const struct ss_endpoint *ss_policy_match_connect(const struct ss_policy *p,
                                                  const struct sockaddr *addr,
                                                  socklen_t addr_len,
                                                  ss_name_has_addr_fn in_set,
                                                  void *arg);

/* The same for a socket accepted on local address addr (IPv4-mapped
 * compared as IPv4, like connect). Listen patterns are never names. */
const struct ss_endpoint *ss_policy_match_listen(const struct ss_policy *p,
                                                 const struct sockaddr *addr,
                                                 socklen_t addr_len);

/*
 * Formats "FILE:LINE: endpoint 'NAME': option 'OPT': " + fmt into err and
 * returns code; used by the modules that validate an endpoint's settings.
 */
int ss_endpoint_fail(struct ss_errbuf *err, int code, const char *path,
                     const struct ss_endpoint *ep, enum ss_opt opt,
                     const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
