/*
 * policy.h - the policy file (libconfig) as an immutable, ref-counted
 * snapshot, and endpoint matching.
 *
 * A snapshot is parsed and validated whole and only then published;
 * connections keep a reference to the snapshot they started under. Its
 * endpoints' TLS contexts are built either up front (ss_policy_load,
 * ss_policy_build_all: the secshim command) or each at its first need
 * (ss_policy_parse, then ss_policy_tls: the shim, so that a process that
 * never uses an endpoint never reads a key; docs/design.md, "When TLS
 * contexts are built"). docs/policy.md documents every option.
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
#include "secshim/peerid.h"
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
    SS_OPT_ALLOW_PEER,
    SS_OPT_X509_STRICT,
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
    /* allow-peer: the identities of which the verified peer certificate
     * must present one (n == 0: not set, any verified peer). Checked
     * after chain verification, in handshakes and by `secshim verify`
     * (ss_verify_allow_peer; docs/verification.md). */
    struct ss_peer_allow allow_peer;
    /* x509-strict (default true): peer chains must follow the RFC 5280
     * profile (docs/verification.md); false accepts a legacy PKI, with a
     * warning when the endpoint's context is built. */
    bool x509_strict;

    /* Where each option came from: the line in the endpoint, or in
     * defaults when inherited; 0 when not set at all. */
    int opt_line[SS_OPT_COUNT];
    int line;                      /* the line of the endpoint's group */

    /* The TLS context: owned; NULL until built, and always when
     * !enabled. Built once (ss_policy_tls, ss_policy_build_all) and never
     * changed after: stored with release once complete, so a reader that
     * sees it non-NULL (an acquire load, ss_endpoint_tls) sees it whole. */
    struct ss_tlsctx *_Atomic tls;
    /* SS_OK, or the error of the build that failed: remembered for the
     * snapshot's life, so a broken endpoint is not rebuilt (and logged)
     * per connection; a reload's fresh snapshot tries again. */
    atomic_int tls_error;
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
 * Parses and validates path into a snapshot with one reference in *out,
 * building no TLS context: every check of ss_policy_load except those
 * that need a context built (docs/policy.md, "What is checked when": a
 * certificate that does not parse, a key that does not match it, a cipher
 * list OpenSSL refuses, FIPS unavailable). Every file named must exist and
 * be readable. Each enabled endpoint's context is built at its first need
 * (ss_policy_tls) or all at once (ss_policy_build_all). No OpenSSL call is
 * made. Returns SS_OK or, with *out NULL and err filled as for
 * ss_policy_load, SS_ERR_IO, SS_ERR_CONFIG, SS_ERR_UNSUPPORTED or
 * SS_ERR_NOMEM.
 */
int ss_policy_parse(const char *path, bool compat, struct ss_policy **out,
                    struct ss_errbuf *err);

/*
 * ss_policy_parse, then ss_policy_build_all: a snapshot whose every enabled
 * endpoint has its TLS context, with one reference in *out. compat is the
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

/*
 * Builds the context of every enabled endpoint of p that has none yet, in
 * file order, as ss_policy_tls would. Returns SS_OK, or the first
 * failure's error with its message in err (what `secshim check` prints).
 */
int ss_policy_build_all(struct ss_policy *p, struct ss_errbuf *err);

/*
 * Makes sure ep, an enabled endpoint of p, has its TLS context: built at
 * the first call, then shared by every thread (and, after fork, by the
 * child). Thread-safe: when the context exists this is one acquire load;
 * otherwise one thread builds it under the engine's build lock while the
 * others wait for it. A build that fails twice in a row (a failed
 * allocation inside OpenSSL does not always say so) is remembered in the
 * snapshot (SS_ERR_NOMEM excepted: tried again at the next call), so the
 * files are not read again and the failure can be reported once:
 * *built_here says
 * whether this call ran the build (so a caller logs what it did once),
 * and when that build failed err holds the tlsctx message "FILE:LINE:
 * endpoint 'NAME': option 'OPT': ..."; later calls return the same code
 * with a shorter err. Returns SS_OK (ep->tls is set), the build's error,
 * or SS_ERR_INVAL when ep is not an enabled endpoint of p.
 */
int ss_policy_tls(struct ss_policy *p, const struct ss_endpoint *ep,
                  bool *built_here, struct ss_errbuf *err);

/* ep's TLS context when it is built, else NULL (one acquire load). */
struct ss_tlsctx *ss_endpoint_tls(const struct ss_endpoint *ep);

/*
 * For a reload: builds in fresh (not yet shared) the context of every
 * endpoint whose namesake in old (the snapshot in use) has its context,
 * so that a reload whose files do not build for an endpoint in use is
 * refused whole and old stays in use, as when every context was built at
 * load; the others stay to be built at their first need. Returns SS_OK
 * or the first failure's error with its message in err.
 */
int ss_policy_build_used(struct ss_policy *fresh,
                         const struct ss_policy *old, struct ss_errbuf *err);

/*
 * fork() support for the shim's pthread_atfork handlers: prepare takes
 * the build lock (first of every lock: it is held across a build, during
 * which only the log lock is taken), parent releases it, and so does
 * the child (its one thread took it). The child keeps every context
 * built before the fork.
 */
void ss_policy_fork_prepare(void);
void ss_policy_fork_parent(void);
void ss_policy_fork_child(void);

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

/*
 * Whether a destination is ep's (a connect endpoint given by name) while
 * its name cannot be resolved: true for an enabled endpoint, so that the
 * connection is TLS and verified rather than plaintext (fail closed);
 * false for a disabled one. What an ss_name_has_addr_fn answers when its
 * lookup fails and no earlier answer is known (docs/design.md, "Endpoints
 * and matching").
 */
bool ss_endpoint_unresolved_matches(const struct ss_endpoint *ep);

/* Where the name a connect endpoint's handshake sends and checks comes
 * from (ss_endpoint_tls_name). */
enum ss_tls_name_source {
    SS_NAME_TARGET,   /* tls-target-name */
    SS_NAME_ENDPOINT, /* a name endpoint's own name (never the alias used) */
    SS_NAME_RESOLVED, /* the one name the program resolved to the address */
    SS_NAME_ADDRESS   /* none, or several: the address, checked as an IP */
};

/*
 * The name a handshake of ep (a connect endpoint) with destination a sends
 * as SNI and checks, into host (len bytes): tls-target-name when set; a
 * name endpoint's own name; for an address, prefix or `*` endpoint
 * resolved (the one name the program resolved to a; NULL when it resolved
 * none or several different ones), else a's address as text, which the
 * verifier checks as an IP address. Used by the shim's connect and by
 * `secshim probe`, so both send and check the same name. Returns where
 * the name came from.
 */
enum ss_tls_name_source ss_endpoint_tls_name(const struct ss_endpoint *ep,
                                             const char *resolved,
                                             const struct ss_net_addr *a,
                                             char *host, size_t len);

/* The same for a socket accepted on local address addr (IPv4-mapped
 * compared as IPv4, like connect). Listen patterns are never names. */
const struct ss_endpoint *ss_policy_match_listen(const struct ss_policy *p,
                                                 const struct sockaddr *addr,
                                                 socklen_t addr_len);

/*
 * Whether a socket bound to local address addr may accept connections
 * that ss_policy_match_listen gives to ep, an endpoint of p: for an
 * address of its own, ep is the match of that address; for the
 * unspecified address (0.0.0.0, or [::], which a dual-stack socket also
 * accepts IPv4 on unless v6only, IPV6_V6ONLY, is set), ep is an enabled
 * listen endpoint of that port whose pattern can match an address the
 * socket accepts on. Used to build listen endpoints' contexts when the
 * program listens, before any client comes.
 */
bool ss_policy_listen_serves(const struct ss_policy *p,
                             const struct ss_endpoint *ep,
                             const struct sockaddr *addr, socklen_t addr_len,
                             bool v6only);

/*
 * Formats "FILE:LINE: endpoint 'NAME': option 'OPT': " + fmt into err and
 * returns code; used by the modules that validate an endpoint's settings.
 */
int ss_endpoint_fail(struct ss_errbuf *err, int code, const char *path,
                     const struct ss_endpoint *ep, enum ss_opt opt,
                     const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
