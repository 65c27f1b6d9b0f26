/*
 * probe.c - `secshim probe`: one connection made, or one client answered,
 * exactly as the shim would for an endpoint, and a report of what was
 * negotiated and decided (docs/probe.md; docs/design.md, "secshim probe").
 *
 *   secshim probe [-c FILE] [-e ENDPOINT] HOST:PORT
 *   secshim probe --serve [-c FILE] [-e ENDPOINT] [--wait SECONDS]
 *                 [HOST:]PORT
 *
 * Nothing here decides TLS: the endpoint is the one the engine's matcher
 * picks (ss_policy_match_connect / ss_policy_match_listen), its context
 * is the one the shim builds (ss_policy_tls: tlsctx, verify, protocol),
 * the name sent and checked is ss_endpoint_tls_name's, and the connection
 * is an ss_conn over the socket, driven as the shim drives it: the same
 * verification, the same failure sentences. This file only makes the TCP
 * connection, waits, and prints what OpenSSL's getters say.
 *
 * Exit codes: 0 a shimmed connection would succeed (the shim would accept
 * the client), 1 it would not (the reason is printed), 2 usage or policy
 * errors.
 */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "secshim/compat.h"
#include "secshim/conn.h"
#include "secshim/policy.h"
#include "secshim/protocol.h"
#include "secshim/tlsctx.h"
#include "secshim/verify.h"

enum { PROBE_OK = 0, PROBE_REFUSED = 1, PROBE_USAGE = 2 };

/* How long --serve waits for its one client unless --wait says. */
#define PROBE_DEFAULT_WAIT_S 30

/* After a TLS 1.3 handshake in which we presented a certificate, the
 * server's verdict on it arrives after our Finished (an alert, or its
 * session tickets): the longest the client probe looks for it. */
#define PROBE_VERDICT_WAIT_MS 500

struct probe_args {
    const char *config;
    const char *endpoint;
    const char *target;  /* HOST:PORT, or [HOST:]PORT with --serve */
    bool serve;
    int wait_s;
};

static const char probe_usage_text[] =
    "usage: secshim probe [-c FILE] [-e ENDPOINT] HOST:PORT\n"
    "       secshim probe --serve [-c FILE] [-e ENDPOINT] [--wait SECONDS]"
    " [HOST:]PORT\n";

static int probe_usage(const char *complaint)
{
    if (complaint != NULL)
        fprintf(stderr, "secshim: probe: %s\n", complaint);
    fputs(probe_usage_text, stderr);
    return PROBE_USAGE;
}

/* ---- time -------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, 0 when it has passed. */
static int ms_left(long long deadline)
{
    long long left = deadline - now_ms();
    return left <= 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* ---- arguments --------------------------------------------------------- */

static bool parse_seconds(const char *text, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || v < 1 || v > 86400)
        return false;
    *out = (int)v;
    return true;
}

static int parse_args(int argc, char **argv, struct probe_args *a)
{
    static const struct option longopts[] = {
        {"serve", no_argument, NULL, 's'},
        {"wait", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0}};
    bool wait_given = false;
    int opt;
    a->wait_s = PROBE_DEFAULT_WAIT_S;
    while ((opt = getopt_long(argc, argv, "c:e:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': a->config = optarg; break;
        case 'e': a->endpoint = optarg; break;
        case 's': a->serve = true; break;
        case 'w':
            if (!parse_seconds(optarg, &a->wait_s))
                return probe_usage("--wait takes 1 to 86400 seconds");
            wait_given = true;
            break;
        default: return probe_usage(NULL);
        }
    }
    if (optind + 1 != argc)
        return probe_usage(a->serve ? "--serve takes one [HOST:]PORT"
                                    : "probe takes one HOST:PORT");
    if (wait_given && !a->serve)
        return probe_usage("--wait is for --serve");
    a->target = argv[optind];
    return PROBE_OK;
}

/*
 * Splits "HOST:PORT" or "[V6]:PORT" (host into buf, brackets removed);
 * with port_only_ok a bare "PORT" leaves host empty. PORT is 1-65535, or
 * 0 with port_only_ok (--serve: any free port, which it prints). Returns
 * false when text is none of these.
 */
static bool split_target(const char *text, bool port_only_ok, char *host,
                         size_t len, unsigned *port)
{
    const char *colon = strrchr(text, ':');
    const char *port_text = colon != NULL ? colon + 1 : text;
    size_t n = colon != NULL ? (size_t)(colon - text) : 0;
    if (colon == NULL && !port_only_ok)
        return false;
    const char *start = text;
    if (n >= 2 && start[0] == '[' && start[n - 1] == ']') {
        start++;
        n -= 2;
    } else if (memchr(text, ':', n) != NULL) {
        return false; /* an IPv6 address needs its brackets */
    }
    if ((colon != NULL && n == 0) || n >= len)
        return false;
    memcpy(host, start, n);
    host[n] = '\0';
    char *end;
    errno = 0;
    unsigned long v = strtoul(port_text, &end, 10);
    if (errno != 0 || *end != '\0' || end == port_text || v > 65535 ||
        (v == 0 && !port_only_ok))
        return false;
    *port = (unsigned)v;
    return true;
}

/* ---- the policy -------------------------------------------------------- */

/* As `secshim check` finds it: -c FILE, else $SECSHIM_CONFIG, else the
 * default path (tools/secshim.c, policy_path). */
static const char *probe_policy_path(const char *given)
{
    if (given != NULL)
        return given;
    const char *env = getenv("SECSHIM_CONFIG");
    return env != NULL && env[0] != '\0' ? env : SS_DEFAULT_CONFIG_PATH;
}

/*
 * Parses the policy as the shim's constructor does (ss_policy_parse, in
 * the compatibility mode read once at start), without building any
 * context: only the probed endpoint's is built (probe_endpoint_ready),
 * as the shim builds an endpoint's at its first use, so a broken file of
 * another endpoint does not stop the probe. NULL after printing why.
 */
static struct ss_policy *probe_policy(const char *given)
{
    const char *path = probe_policy_path(given);
    struct ss_policy *p = NULL;
    struct ss_errbuf err = {{0}};
    if (ss_policy_parse(path, ss_compat_mode(), &p, &err) != SS_OK) {
        fprintf(stderr, "secshim: %s\n", err.msg);
        return NULL;
    }
    return p;
}

/* The endpoint named by -e, which must be enabled and of direction dir;
 * NULL after printing why. */
static const struct ss_endpoint *named_endpoint(const struct ss_policy *p,
                                                const char *name,
                                                enum ss_direction dir)
{
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct ss_endpoint *ep = &p->endpoints[i];
        if (strcmp(ep->name, name) != 0)
            continue;
        if (ep->direction != dir) {
            fprintf(stderr, "secshim: probe: endpoint '%s' is a %s "
                    "endpoint%s\n", name,
                    ep->direction == SS_DIR_CONNECT ? "connect" : "listen",
                    dir == SS_DIR_LISTEN ? ": --serve needs a listen one"
                                         : ": probe --serve answers as it");
            return NULL;
        }
        if (!ep->enabled) {
            fprintf(stderr, "secshim: probe: endpoint '%s' is disabled: the "
                    "shim leaves its connections plaintext\n", name);
            return NULL;
        }
        return ep;
    }
    fprintf(stderr, "secshim: probe: no endpoint named '%s' in %s\n", name,
            p->path);
    return NULL;
}

/* Builds ep's context as the shim does at its first use; false after
 * printing the tlsctx message (file, line, option). */
static bool probe_endpoint_ready(struct ss_policy *p,
                                 const struct ss_endpoint *ep)
{
    bool built = false;
    struct ss_errbuf err = {{0}};
    if (ss_policy_tls(p, ep, &built, &err) == SS_OK)
        return true;
    fprintf(stderr, "secshim: %s\n", err.msg);
    return false;
}

/* ---- printing certificates --------------------------------------------- */

static void print_name(const char *label, const X509_NAME *name)
{
    BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
    if (out == NULL)
        return;
    /* The BIO writes through stdout's own stream, in order. */
    printf("    %s: ", label);
    X509_NAME_print_ex(out, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    BIO_printf(out, "\n");
    BIO_free(out);
}

static void print_time(const char *label, const ASN1_TIME *t)
{
    BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
    if (out == NULL)
        return;
    printf("    %s: ", label);
    ASN1_TIME_print(out, t);
    BIO_printf(out, "\n");
    BIO_free(out);
}

/* One subjectAltName entry as "DNS:name", "IP:addr", "email:..." . */
static void print_san(const GENERAL_NAME *gn, bool first)
{
    const char *sep = first ? "" : ", ";
    int type = 0;
    const void *value = GENERAL_NAME_get0_value(gn, &type);
    const ASN1_STRING *s = value;
    char ip[INET6_ADDRSTRLEN] = "?";
    switch (type) {
    case GEN_DNS:
    case GEN_EMAIL:
    case GEN_URI:
        printf("%s%s:%.*s", sep,
               type == GEN_DNS ? "DNS" : type == GEN_EMAIL ? "email" : "URI",
               ASN1_STRING_length(s),
               (const char *)ASN1_STRING_get0_data(s));
        return;
    case GEN_IPADD:
        if (ASN1_STRING_length(s) == 4 || ASN1_STRING_length(s) == 16)
            inet_ntop(ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6,
                      ASN1_STRING_get0_data(s), ip, sizeof(ip));
        printf("%sIP:%s", sep, ip);
        return;
    default:
        printf("%s(type %d)", sep, type);
        return;
    }
}

static void print_sans(X509 *cert)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL,
                                           NULL);
    printf("    subject alt names: ");
    if (sans == NULL)
        printf("(none)");
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++)
        print_san(sk_GENERAL_NAME_value(sans, i), i == 0);
    printf("\n");
    GENERAL_NAMES_free(sans);
}

static void print_cert(const char *what, int i, X509 *cert)
{
    printf("%s %d:\n", what, i);
    print_name("subject", X509_get_subject_name(cert));
    print_name("issuer", X509_get_issuer_name(cert));
    print_time("not before", X509_get0_notBefore(cert));
    print_time("not after", X509_get0_notAfter(cert));
    print_sans(cert);
}

/*
 * The certificates the peer sent, leaf first. A client's SSL lists the
 * leaf in its peer chain; a server's does not, so the leaf is printed
 * first from SSL_get0_peer_certificate. OpenSSL 3.0 keeps a server's
 * chain that verification refused, not a client's: the reason then names
 * the certificate.
 */
static void print_peer_chain(SSL *ssl, bool server)
{
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    const char *what = server ? "client certificate" : "peer certificate";
    if (leaf == NULL && (chain == NULL || sk_X509_num(chain) == 0)) {
        printf("%s: none\n", what);
        return;
    }
    int n = 0;
    if (server && leaf != NULL)
        print_cert(what, n++, leaf);
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
        print_cert(what, n++, sk_X509_value(chain, i));
}

/* ---- the verification and the result ----------------------------------- */

static void print_relaxations(const struct ss_verify_result *res)
{
    static const enum ss_relaxation all[] = {SS_RELAX_REVOKED_TRUSTED_CA,
                                             SS_RELAX_KEY_USAGE};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if ((res->relaxations & (unsigned)all[i]) == 0)
            continue;
        printf("relaxation (compatibility mode): %s: %s\n",
               ss_relaxation_name(all[i]),
               res->relaxed_subject[i][0] != '\0' ? res->relaxed_subject[i]
                                                  : "(subject not kept)");
    }
}

/* How the engine's sentence for our verifier's refusal begins (conn.c);
 * its other SS_ERR_VERIFY is the peer refusing our certificate. */
static const char verify_failed[] = "certificate verify failed";

/* What verification decided, as far as the handshake got. */
static void print_verification(const struct ss_conn *conn, int rc,
                               const char *checked)
{
    const struct ss_verify_result *res = ss_conn_verify_result(conn);
    if (rc == SS_OK && res->ok)
        printf("verification: verified (%s)\n", checked);
    else if (rc == SS_OK)
        printf("verification: not requested (tls-mutual is off)\n");
    else if (rc == SS_ERR_VERIFY && strncmp(ss_conn_error(conn), verify_failed,
                                            strlen(verify_failed)) == 0)
        printf("verification: failed: %s\n", ss_conn_error(conn));
    else if (rc == SS_ERR_VERIFY) /* the peer refused our certificate */
        printf("verification: ours refused: %s\n", ss_conn_error(conn));
    else
        printf("verification: not reached\n");
    print_relaxations(res);
}

/* The one line the shim logs for a failed handshake, and exit 1. */
static int refused(const struct ss_endpoint *ep, const char *what,
                   const char *peer, const char *why)
{
    printf("result: refused: endpoint '%s': %s %s failed: %s\n", ep->name,
           what, peer, why != NULL && *why ? why : "unknown error");
    return PROBE_REFUSED;
}

/* ---- driving the connection -------------------------------------------- */

static short poll_events(int wants)
{
    return (short)((wants & SS_WANT_READ ? POLLIN : 0) |
                   (wants & SS_WANT_WRITE ? POLLOUT : 0));
}

/* Waits (at most until deadline) for what the conn asked for. */
static void wait_for(const struct ss_conn *conn, int fd, int rc,
                     long long deadline)
{
    int wants = ss_conn_wants(conn);
    if (rc == SS_WANT_READ || rc == SS_WANT_WRITE)
        wants |= rc;
    struct pollfd pfd = {.fd = fd, .events = poll_events(wants)};
    (void)poll(&pfd, 1, ms_left(deadline));
}

/*
 * Drives the handshake to its end or deadline, as the shim's blocking
 * wait does (src/shim/drive.c). Returns SS_OK, the conn's error, or
 * SS_ERR_TIMEOUT.
 */
static int drive_handshake(struct ss_conn *conn, int fd, long long deadline)
{
    for (;;) {
        int rc = ss_conn_handshake(conn);
        if (rc <= 0)
            return rc;
        if (ms_left(deadline) == 0)
            return SS_ERR_TIMEOUT;
        wait_for(conn, fd, rc, deadline);
    }
}

/* Sends what is still buffered and close_notify, bounded by deadline. */
static void finish(struct ss_conn *conn, int fd, long long deadline)
{
    int rc;
    while ((rc = ss_conn_shutdown(conn)) == SS_WANT_WRITE &&
           ms_left(deadline) > 0)
        wait_for(conn, fd, rc, deadline);
}

/* The shim's sentence for a handshake that ran out of time (drive.c). */
static void timeout_text(const struct ss_endpoint *ep, char *buf, size_t len)
{
    int ms = ep->handshake_timeout_ms;
    snprintf(buf, len, "no complete handshake within %d.%03d s "
             "(handshake-timeout)", ms / 1000, ms % 1000);
}

/* ---- probe HOST:PORT --------------------------------------------------- */

/* What the connect side found: the address, the endpoint, the names. */
struct target {
    char host[256];            /* as given */
    unsigned port;
    bool numeric;              /* host is an address, not a name */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    const struct ss_endpoint *ep;
    char tls_name[256];        /* sent as SNI (a name) and checked */
    enum ss_tls_name_source name_source;
    char peer[320];            /* as the shim's log names the peer */
};

/*
 * ss_name_has_addr_fn: whether destination a is in the address set of ep
 * (a name endpoint), resolved here as the shim resolves it (the system's
 * resolver, both families); a name that does not resolve fails closed
 * (ss_endpoint_unresolved_matches).
 */
static bool probe_in_name_set(const struct ss_endpoint *ep,
                              const struct ss_net_addr *a, void *arg)
{
    (void)arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(ep->match.name, NULL, &hints, &res) != 0)
        return ss_endpoint_unresolved_matches(ep);
    bool hit = false;
    for (const struct addrinfo *ai = res; ai != NULL && !hit;
         ai = ai->ai_next) {
        struct ss_net_addr b;
        hit = ss_net_addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &b) &&
              ss_net_addr_equal(&b, a);
    }
    freeaddrinfo(res);
    return hit;
}

/* "name:port", or the address with the port, as the shim's peer_text
 * (src/shim/sockets.c) writes it. */
static void peer_text(const struct target *t, char *out, size_t len)
{
    if (strchr(t->tls_name, ':') == NULL)
        snprintf(out, len, "%s:%u", t->tls_name, t->port);
    else
        snprintf(out, len, "[%s]:%u", t->tls_name, t->port);
}

static const char *name_source_text(enum ss_tls_name_source src)
{
    switch (src) {
    case SS_NAME_TARGET: return "tls-target-name";
    case SS_NAME_ENDPOINT: return "the endpoint's name";
    case SS_NAME_RESOLVED: return "the name resolved to the address";
    case SS_NAME_ADDRESS:
    default: return "the address: no name was resolved to it";
    }
}

/*
 * Fills t's endpoint and names for the destination in t->addr: the -e
 * endpoint, else the one ss_policy_match_connect picks. Returns false
 * (after printing why) when no enabled endpoint makes the destination
 * TLS: there is no shimmed connection to probe.
 */
static bool pick_connect_endpoint(const struct ss_policy *p,
                                  const struct ss_endpoint *named,
                                  struct target *t)
{
    t->ep = named != NULL
                ? named
                : ss_policy_match_connect(p, (struct sockaddr *)&t->addr,
                                          t->addr_len, probe_in_name_set,
                                          NULL);
    if (t->ep == NULL)
        return false;
    struct ss_net_addr a;
    if (!ss_net_addr_from_sockaddr((struct sockaddr *)&t->addr, t->addr_len,
                                   &a))
        return false;
    /* The name the program resolved: the one given, when it is a name. */
    t->name_source = ss_endpoint_tls_name(t->ep, t->numeric ? NULL : t->host,
                                          &a, t->tls_name,
                                          sizeof(t->tls_name));
    peer_text(t, t->peer, sizeof(t->peer));
    return true;
}

/* A non-blocking TCP connect to t->addr, bounded by deadline. Returns the
 * descriptor, or -1 with errno (ETIMEDOUT when the deadline passed). */
static int tcp_connect(const struct target *t, long long deadline)
{
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
                    SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) == 0)
        return fd;
    int e = errno;
    while (e == EINPROGRESS || e == EINTR) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int left = ms_left(deadline);
        if (left == 0) {
            e = ETIMEDOUT;
            break;
        }
        if (poll(&pfd, 1, left) <= 0)
            continue;
        socklen_t len = sizeof(e);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
            e = errno;
        if (e == 0)
            return fd;
    }
    close(fd);
    errno = e;
    return -1;
}

static void print_target(const struct target *t)
{
    char addr[INET6_ADDRSTRLEN] = "?";
    const void *bytes =
        t->addr.ss_family == AF_INET6
            ? (const void *)&((const struct sockaddr_in6 *)&t->addr)->sin6_addr
            : (const void *)&((const struct sockaddr_in *)&t->addr)->sin_addr;
    inet_ntop(t->addr.ss_family, bytes, addr, sizeof(addr));
    char proto[128];
    printf("endpoint: %s (connect %s, protocol %s)\n", t->ep->name,
           t->ep->address, ss_protocol_describe(&t->ep->proto, proto,
                                                sizeof(proto)));
    printf("address: %s port %u\n", addr, t->port);
    printf("server name: %s (%s; %s)\n", t->tls_name,
           name_source_text(t->name_source),
           t->ep->target_name_check ? "checked against the certificate"
                                    : "not checked: tls-target-name-check "
                                      "is \"no\"");
}

/*
 * TLS 1.3: a server that refuses our certificate says so after our
 * Finished, when the handshake is over for us (the shim's program then
 * learns it at its first read). When we presented one, look for that
 * verdict (an alert, or the server's tickets) a short while. Returns
 * SS_OK or the conn's error.
 */
static int await_certificate_verdict(struct ss_conn *conn, int fd,
                                     long long deadline)
{
    SSL *ssl = ss_conn_ssl(conn);
    if (SSL_version(ssl) != TLS1_3_VERSION || SSL_get_certificate(ssl) == NULL)
        return SS_OK;
    long long until = now_ms() + PROBE_VERDICT_WAIT_MS;
    if (until > deadline)
        until = deadline;
    char byte;
    size_t n;
    int rc;
    while ((rc = ss_conn_read(conn, &byte, 1, true, &n)) == SS_WANT_READ &&
           ms_left(until) > 0)
        wait_for(conn, fd, rc, until);
    return rc < 0 ? rc : SS_OK;
}

/* The TLS part of a probe over connected fd. Returns the exit code. */
static int probe_tls(struct ss_policy *p, const struct target *t, int fd,
                     long long deadline)
{
    struct ss_conn *conn = NULL;
    struct ss_errbuf err = {{0}};
    if (ss_conn_new(p, t->ep, fd, &ss_io_libc, t->tls_name, &conn, &err) !=
        SS_OK)
        return refused(t->ep, "TLS setup with", t->peer, err.msg);
    int rc = drive_handshake(conn, fd, deadline);
    /* Refused after our handshake ended: the shim's program sees it at
     * its first read, and the shim names the connection, not the
     * handshake. */
    int after = rc == SS_OK ? await_certificate_verdict(conn, fd, deadline)
                            : SS_OK;
    SSL *ssl = ss_conn_ssl(conn);
    if (rc == SS_OK) {
        printf("protocol: %s\n", SSL_get_version(ssl));
        printf("cipher: %s\n", SSL_CIPHER_get_name(
                                   SSL_get_current_cipher(ssl)));
        printf("session: full handshake (the probe offers no cached "
               "session)\n");
    }
    print_peer_chain(ssl, false);
    char checked[300];
    snprintf(checked, sizeof(checked), "%s%s%s",
             t->ep->target_name_check ? "chain and name '" : "chain only",
             t->ep->target_name_check ? t->tls_name : "",
             t->ep->target_name_check ? "'" : "");
    print_verification(conn, rc, checked);
    int code = PROBE_OK;
    if (rc == SS_ERR_TIMEOUT) {
        char why[128];
        timeout_text(t->ep, why, sizeof(why));
        code = refused(t->ep, "TLS handshake with", t->peer, why);
    } else if (rc < 0) {
        code = refused(t->ep, "TLS handshake with", t->peer,
                       ss_conn_error(conn));
    } else if (after < 0) {
        code = refused(t->ep, "TLS connection with", t->peer,
                       ss_conn_error(conn));
    } else {
        finish(conn, fd, deadline);
        printf("result: accepted: a shimmed connection to %s would "
               "succeed\n", t->peer);
    }
    ss_conn_free(conn);
    return code;
}

/* Resolves host as a program would (numeric or the system's resolver).
 * Returns 0 or a getaddrinfo error. */
static int resolve_target(const struct target *t, struct addrinfo **res)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    char port[8];
    snprintf(port, sizeof(port), "%u", t->port);
    return getaddrinfo(t->host, port, &hints, res);
}

/*
 * Each address of the target in turn, as a client tries them: the
 * endpoint is matched for that address, TCP connected within the
 * endpoint's handshake-timeout; the first that connects gets the TLS
 * handshake, within the same deadline (a non-blocking connect of the
 * shim's is timed from connect too). Returns the exit code.
 */
static int probe_addresses(struct ss_policy *p,
                           const struct ss_endpoint *named, struct target *t,
                           const struct addrinfo *list)
{
    const struct ss_endpoint *failed_ep = NULL;
    char why[160] = "";
    for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(t->addr))
            continue;
        memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
        t->addr_len = ai->ai_addrlen;
        if (!pick_connect_endpoint(p, named, t)) {
            fprintf(stderr, "secshim: probe: no enabled connect endpoint of "
                    "%s matches %s (port %u): the shim leaves that "
                    "connection plaintext\n", p->path, t->host, t->port);
            continue;
        }
        if (!probe_endpoint_ready(p, t->ep))
            return PROBE_USAGE;
        print_target(t);
        long long deadline = now_ms() + t->ep->handshake_timeout_ms;
        int fd = tcp_connect(t, deadline);
        if (fd < 0) {
            /* A client tries the next address; the last failure is the
             * result. */
            snprintf(why, sizeof(why), "%s%s", strerror(errno),
                     errno == ETIMEDOUT ? " (handshake-timeout)" : "");
            printf("TCP connect to %s failed: %s\n", t->peer, why);
            failed_ep = t->ep;
            continue;
        }
        int code = probe_tls(p, t, fd, deadline);
        close(fd);
        return code;
    }
    if (failed_ep == NULL)
        return PROBE_USAGE; /* no address of the target is shimmed */
    return refused(failed_ep, "TCP connect to", t->peer, why);
}

static int probe_connect(struct ss_policy *p, const struct probe_args *a)
{
    struct target t;
    memset(&t, 0, sizeof(t));
    if (!split_target(a->target, false, t.host, sizeof(t.host), &t.port))
        return probe_usage("HOST:PORT expected (an IPv6 address in "
                           "brackets)");
    unsigned char bytes[16];
    t.numeric = inet_pton(AF_INET, t.host, bytes) == 1 ||
                inet_pton(AF_INET6, t.host, bytes) == 1;
    const struct ss_endpoint *named = NULL;
    if (a->endpoint != NULL &&
        (named = named_endpoint(p, a->endpoint, SS_DIR_CONNECT)) == NULL)
        return PROBE_USAGE;
    struct addrinfo *list = NULL;
    int rc = resolve_target(&t, &list);
    if (rc != 0) {
        fprintf(stderr, "secshim: probe: cannot resolve '%s': %s\n", t.host,
                gai_strerror(rc));
        return PROBE_USAGE;
    }
    int code = probe_addresses(p, named, &t, list);
    freeaddrinfo(list);
    return code;
}

/* ---- probe --serve: what the client offered ---------------------------- */

/* Filled by the ClientHello callback, printed after the handshake. */
struct hello_report {
    int seen;                  /* ClientHellos (2 after a HelloRetryRequest) */
    char legacy_version[16];
    char versions[128];        /* supported_versions */
    char ciphers[2048];
    char sni[260];
    char alpn[512];
    char sigalgs[1024];
    char groups[512];
};

/* Appends one item to a ", "-separated list in buf. */
static void list_add(char *buf, size_t len, const char *item)
{
    size_t used = strlen(buf);
    if (used + 1 >= len)
        return;
    snprintf(buf + used, len - used, "%s%s", used > 0 ? ", " : "", item);
}

static const char *version_text(unsigned v, char *buf, size_t len)
{
    const char *name = ss_protocol_version_name((int)v);
    if (strcmp(name, "unknown") != 0)
        return name;
    snprintf(buf, len, "0x%04x", v);
    return buf;
}

/* TLS SignatureScheme code points (RFC 8446 4.2.3, RFC 8422) by name;
 * OpenSSL 3.0 has no public lookup from the code point. */
static const char *sigalg_name(unsigned code)
{
    static const struct { unsigned code; const char *name; } names[] = {
        {0x0201, "rsa_pkcs1_sha1"}, {0x0203, "ecdsa_sha1"},
        {0x0301, "rsa_pkcs1_sha224"}, {0x0303, "ecdsa_sha224"},
        {0x0401, "rsa_pkcs1_sha256"}, {0x0501, "rsa_pkcs1_sha384"},
        {0x0601, "rsa_pkcs1_sha512"}, {0x0403, "ecdsa_secp256r1_sha256"},
        {0x0503, "ecdsa_secp384r1_sha384"},
        {0x0603, "ecdsa_secp521r1_sha512"}, {0x0804, "rsa_pss_rsae_sha256"},
        {0x0805, "rsa_pss_rsae_sha384"}, {0x0806, "rsa_pss_rsae_sha512"},
        {0x0807, "ed25519"}, {0x0808, "ed448"},
        {0x0809, "rsa_pss_pss_sha256"}, {0x080a, "rsa_pss_pss_sha384"},
        {0x080b, "rsa_pss_pss_sha512"}, {0x0202, "dsa_sha1"},
        {0x0302, "dsa_sha224"}, {0x0402, "dsa_sha256"},
        {0x0502, "dsa_sha384"}, {0x0602, "dsa_sha512"},
        {0x081a, "ecdsa_brainpoolP256r1tls13_sha256"},
        {0x081b, "ecdsa_brainpoolP384r1tls13_sha384"},
        {0x081c, "ecdsa_brainpoolP512r1tls13_sha512"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].code == code)
            return names[i].name;
    return NULL;
}

/* The raw bytes of extension type of the ClientHello, or false. */
static bool hello_ext(SSL *ssl, unsigned type, const unsigned char **p,
                      size_t *n)
{
    return SSL_client_hello_get0_ext(ssl, type, p, n) == 1;
}

/* A list of 16-bit values after a length prefix of lenbytes (1 or 2). */
static void u16_list(const unsigned char *p, size_t n, size_t lenbytes,
                     void (*add)(unsigned v, void *arg), void *arg)
{
    if (n < lenbytes)
        return;
    size_t len = lenbytes == 1 ? p[0] : ((size_t)p[0] << 8 | p[1]);
    p += lenbytes;
    n -= lenbytes;
    if (len > n)
        len = n;
    for (size_t i = 0; i + 1 < len; i += 2)
        add((unsigned)p[i] << 8 | p[i + 1], arg);
}

struct add_ctx {
    SSL *ssl;
    struct hello_report *r;
};

static void add_version(unsigned v, void *arg)
{
    struct add_ctx *x = arg;
    char buf[16];
    list_add(x->r->versions, sizeof(x->r->versions),
             version_text(v, buf, sizeof(buf)));
}

static void add_sigalg(unsigned v, void *arg)
{
    struct add_ctx *x = arg;
    char buf[16];
    const char *name = sigalg_name(v);
    if (name == NULL) {
        snprintf(buf, sizeof(buf), "0x%04x", v);
        name = buf;
    }
    list_add(x->r->sigalgs, sizeof(x->r->sigalgs), name);
}

static void add_group(unsigned v, void *arg)
{
    struct add_ctx *x = arg;
    char buf[16];
    /* SSL_group_to_name takes a NID, or a TLS group id marked so. */
    const char *name = SSL_group_to_name(x->ssl, (int)(TLSEXT_nid_unknown | v));
    if (name == NULL) {
        snprintf(buf, sizeof(buf), "0x%04x", v);
        name = buf;
    }
    list_add(x->r->groups, sizeof(x->r->groups), name);
}

static void hello_ciphers(SSL *ssl, struct hello_report *r)
{
    const unsigned char *p;
    size_t n = SSL_client_hello_get0_ciphers(ssl, &p);
    for (size_t i = 0; i + 1 < n; i += 2) {
        const SSL_CIPHER *c = SSL_CIPHER_find(ssl, p + i);
        char buf[16];
        const char *name = c != NULL ? SSL_CIPHER_get_name(c) : NULL;
        if (name == NULL) {
            snprintf(buf, sizeof(buf), "0x%02x%02x", p[i], p[i + 1]);
            name = buf;
        }
        list_add(r->ciphers, sizeof(r->ciphers), name);
    }
}

/* server_name: a list of (type, 16-bit length, name); host_name is 0. */
static void hello_sni(SSL *ssl, struct hello_report *r)
{
    const unsigned char *p;
    size_t n;
    if (!hello_ext(ssl, TLSEXT_TYPE_server_name, &p, &n) || n < 5 ||
        p[2] != TLSEXT_NAMETYPE_host_name)
        return;
    size_t len = (size_t)p[3] << 8 | p[4];
    if (len > n - 5)
        len = n - 5; /* a short extension: what is there */
    snprintf(r->sni, sizeof(r->sni), "%.*s", (int)len, p + 5);
}

/* ALPN: a 16-bit length, then (8-bit length, name) entries. */
static void hello_alpn(SSL *ssl, struct hello_report *r)
{
    const unsigned char *p;
    size_t n;
    if (!hello_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
                   &p, &n) || n < 2)
        return;
    for (size_t i = 2; i < n;) {
        size_t len = p[i++];
        if (len > n - i)
            break;
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)len, p + i);
        list_add(r->alpn, sizeof(r->alpn), name);
        i += len;
    }
}

/* SSL_CTX_set_client_hello_cb: records what the client offered, and lets
 * the handshake go on as it would under the shim. */
static int hello_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    struct hello_report *r = arg;
    if (r->seen++ > 0)
        return SSL_CLIENT_HELLO_SUCCESS; /* the first one is reported */
    char buf[16];
    snprintf(r->legacy_version, sizeof(r->legacy_version), "%s",
             version_text(SSL_client_hello_get0_legacy_version(ssl), buf,
                          sizeof(buf)));
    struct add_ctx x = {ssl, r};
    const unsigned char *p;
    size_t n;
    if (hello_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &n))
        u16_list(p, n, 1, add_version, &x);
    if (hello_ext(ssl, TLSEXT_TYPE_signature_algorithms, &p, &n))
        u16_list(p, n, 2, add_sigalg, &x);
    if (hello_ext(ssl, TLSEXT_TYPE_supported_groups, &p, &n))
        u16_list(p, n, 2, add_group, &x);
    hello_ciphers(ssl, r);
    hello_sni(ssl, r);
    hello_alpn(ssl, r);
    return SSL_CLIENT_HELLO_SUCCESS;
}

static const char *or_none(const char *s)
{
    return s[0] != '\0' ? s : "(none)";
}

static void print_hello(const struct hello_report *r)
{
    if (r->seen == 0) {
        printf("client offered: no ClientHello arrived\n");
        return;
    }
    printf("client offered:\n");
    printf("  legacy version: %s\n", r->legacy_version);
    printf("  supported versions: %s\n", or_none(r->versions));
    printf("  cipher suites: %s\n", or_none(r->ciphers));
    printf("  server name (SNI): %s\n", or_none(r->sni));
    printf("  ALPN: %s\n", or_none(r->alpn));
    printf("  signature algorithms: %s\n", or_none(r->sigalgs));
    printf("  groups: %s\n", or_none(r->groups));
    if (r->seen > 1)
        printf("  (%d ClientHellos: a HelloRetryRequest asked again)\n",
               r->seen);
}

/* ---- probe --serve: listening and answering ------------------------------ */

/* The listening socket on host (empty: 0.0.0.0) and port; -1 after
 * printing why. */
static int serve_socket(const char *host, unsigned port,
                        struct sockaddr_storage *bound, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    char port_text[8];
    snprintf(port_text, sizeof(port_text), "%u", port);
    int rc = getaddrinfo(host[0] != '\0' ? host : "0.0.0.0", port_text,
                         &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "secshim: probe: --serve listens on an address, "
                "not '%s': %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1) != 0) {
        fprintf(stderr, "secshim: probe: cannot listen on %s: %s\n",
                host[0] != '\0' ? host : "0.0.0.0", strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    *len = sizeof(*bound);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)bound, len) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* "addr:port" / "[addr]:port" of sa, as the shim names peers. */
static void sockaddr_text(const struct sockaddr_storage *sa, char *out,
                          size_t len)
{
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned port;
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
        port = ntohs(in6->sin6_port);
        snprintf(out, len, "[%s]:%u", addr, port);
        return;
    }
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
    snprintf(out, len, "%s:%u", addr, (unsigned)ntohs(in->sin_port));
}

/*
 * Builds, before any client, the context of every enabled listen endpoint
 * that would serve a socket bound to bound, as the shim does at listen()
 * (ss_policy_listen_serves), or of -e's. Returns false after printing why
 * (none serves it: the shim leaves its clients plaintext; a context that
 * does not build).
 */
static bool serving_endpoints_ready(struct ss_policy *p,
                                    const struct ss_endpoint *named,
                                    const struct sockaddr_storage *bound,
                                    socklen_t len, const char *where)
{
    if (named != NULL)
        return probe_endpoint_ready(p, named);
    bool any = false;
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct ss_endpoint *ep = &p->endpoints[i];
        if (!ss_policy_listen_serves(p, ep, (const struct sockaddr *)bound,
                                     len, false))
            continue;
        if (!probe_endpoint_ready(p, ep))
            return false;
        any = true;
    }
    if (!any)
        fprintf(stderr, "secshim: probe: no enabled listen endpoint of %s "
                "serves %s: the shim leaves its clients plaintext\n",
                p->path, where);
    return any;
}

/* Waits (bounded by --wait) for one client and accepts it; -1 after
 * printing why. */
static int accept_one(int lfd, int wait_s, struct sockaddr_storage *peer,
                      socklen_t *len)
{
    long long deadline = now_ms() + (long long)wait_s * 1000;
    for (;;) {
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        int left = ms_left(deadline);
        if (left == 0) {
            printf("result: refused: no client connected within %d s "
                   "(--wait)\n", wait_s);
            return -1;
        }
        if (poll(&pfd, 1, left) <= 0)
            continue;
        *len = sizeof(*peer);
        int fd = accept4(lfd, (struct sockaddr *)peer, len,
                         SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0)
            return fd;
        if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) {
            printf("result: refused: accept failed: %s\n", strerror(errno));
            return -1;
        }
    }
}

/* The accepted socket's endpoint: -e, else the listen endpoint the shim
 * matches by the socket's local address. */
static const struct ss_endpoint *accepted_endpoint(
    const struct ss_policy *p, const struct ss_endpoint *named, int fd)
{
    if (named != NULL)
        return named;
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &len) != 0)
        return NULL;
    return ss_policy_match_listen(p, (struct sockaddr *)&local, len);
}

static void print_negotiated(SSL *ssl)
{
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    printf("negotiated:\n");
    printf("  protocol: %s\n", SSL_get_version(ssl));
    printf("  cipher: %s\n",
           SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
    printf("  ALPN: %.*s%s\n", (int)alpn_len, alpn != NULL ? (const char *)alpn
                                                           : "",
           alpn_len == 0 ? "(none: the shim selects no application "
                           "protocol)"
                         : "");
}

/* The TLS part of --serve over accepted fd. Returns the exit code. */
static int serve_tls(struct ss_policy *p, const struct ss_endpoint *ep,
                     int fd, const char *peer, struct hello_report *hello)
{
    char host[320];
    snprintf(host, sizeof(host), "%s", peer);
    char *colon = strrchr(host, ':');
    if (colon != NULL)
        *colon = '\0'; /* the address alone, as the shim's host_text */
    struct ss_conn *conn = NULL;
    struct ss_errbuf err = {{0}};
    if (ss_conn_new(p, ep, fd, &ss_io_libc, host, &conn, &err) != SS_OK)
        return refused(ep, "TLS setup with", peer, err.msg);
    long long deadline = now_ms() + ep->handshake_timeout_ms;
    int rc = drive_handshake(conn, fd, deadline);
    SSL *ssl = ss_conn_ssl(conn);
    print_hello(hello);
    if (rc == SS_OK)
        print_negotiated(ssl);
    print_peer_chain(ssl, true);
    print_verification(conn, rc, "client certificate chain");
    int code = PROBE_OK;
    if (rc == SS_ERR_TIMEOUT) {
        char why[128];
        timeout_text(ep, why, sizeof(why));
        code = refused(ep, "TLS handshake with", peer, why);
    } else if (rc < 0) {
        code = refused(ep, "TLS handshake with", peer, ss_conn_error(conn));
    } else {
        finish(conn, fd, deadline);
        printf("result: accepted: the shim would accept this client\n");
    }
    ss_conn_free(conn);
    return code;
}

/* The accepted client fd, answered as ep (or the endpoint its local
 * address matches). Returns the exit code. */
static int serve_client(struct ss_policy *p, const struct ss_endpoint *named,
                        int fd, const struct sockaddr_storage *peer_addr)
{
    const struct ss_endpoint *ep = accepted_endpoint(p, named, fd);
    if (ep == NULL) {
        fprintf(stderr, "secshim: probe: no enabled listen endpoint matches "
                "the client's connection: the shim leaves it plaintext\n");
        return PROBE_USAGE;
    }
    if (!probe_endpoint_ready(p, ep))
        return PROBE_USAGE;
    char peer[320], proto[128];
    sockaddr_text(peer_addr, peer, sizeof(peer));
    printf("endpoint: %s (listen %s, protocol %s, tls-mutual %s)\n",
           ep->name, ep->address,
           ss_protocol_describe(&ep->proto, proto, sizeof(proto)),
           ep->tls_mutual ? "on" : "off");
    printf("client: %s\n", peer);
    /* The context is this process's own (nothing else uses it): the
     * callback records the ClientHello and changes nothing. */
    SSL_CTX *ctx = ss_endpoint_tls(ep)->ctx;
    struct hello_report hello;
    memset(&hello, 0, sizeof(hello));
    SSL_CTX_set_client_hello_cb(ctx, hello_cb, &hello);
    int code = serve_tls(p, ep, fd, peer, &hello);
    SSL_CTX_set_client_hello_cb(ctx, NULL, NULL);
    return code;
}

static int probe_serve(struct ss_policy *p, const struct probe_args *a)
{
    char host[256];
    unsigned port;
    if (!split_target(a->target, true, host, sizeof(host), &port))
        return probe_usage("--serve takes [HOST:]PORT (an IPv6 address in "
                           "brackets)");
    const struct ss_endpoint *named = NULL;
    if (a->endpoint != NULL &&
        (named = named_endpoint(p, a->endpoint, SS_DIR_LISTEN)) == NULL)
        return PROBE_USAGE;
    struct sockaddr_storage bound;
    socklen_t len;
    int lfd = serve_socket(host, port, &bound, &len);
    if (lfd < 0)
        return PROBE_USAGE;
    char where[320];
    sockaddr_text(&bound, where, sizeof(where));
    if (!serving_endpoints_ready(p, named, &bound, len, where)) {
        close(lfd);
        return PROBE_USAGE;
    }
    printf("listening: %s\n", where);
    fflush(stdout);
    struct sockaddr_storage peer_addr;
    socklen_t peer_len;
    int fd = accept_one(lfd, a->wait_s, &peer_addr, &peer_len);
    close(lfd);
    if (fd < 0)
        return PROBE_REFUSED;
    int code = serve_client(p, named, fd, &peer_addr);
    close(fd);
    return code;
}

/* ---- the command --------------------------------------------------------- */

int cmd_probe(int argc, char **argv)
{
    struct probe_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != PROBE_OK)
        return rc;
    /* Read once, before the policy, as the shim's constructor does. */
    bool compat = ss_compat_mode();
    struct ss_policy *p = probe_policy(a.config);
    if (p == NULL)
        return PROBE_USAGE;
    printf("policy: %s (compatibility mode %s)\n", p->path,
           compat ? "on" : "off");
    rc = a.serve ? probe_serve(p, &a) : probe_connect(p, &a);
    ss_policy_unref(p);
    fflush(stdout);
    return rc;
}
