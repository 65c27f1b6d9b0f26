/*
 * fuzz_match.c - libFuzzer harness for endpoint matching (docs/testing.md,
 * "Fuzzing"; docs/design.md, "Endpoints and matching").
 *
 * The input is a mode byte and then a list of queries, each a socket
 * address as a program could pass it to connect() or that accept()
 * reports (family, length, bytes and port all arbitrary, the port mostly
 * one the policy uses so that the matching loop runs), a bit set the
 * name-set callback answers from, and a host name as if the program had
 * resolved it. Each query goes through ss_net_addr_from_sockaddr,
 * ss_policy_match_connect (with and without a name set),
 * ss_policy_match_listen, ss_policy_listen_serves, ss_host_pattern_has_addr
 * and ss_endpoint_tls_name, against a fixed policy with every kind of
 * pattern; with mode bit 0 set, the input also gives one endpoint's
 * address (mode bit 1: connect or listen), written into a copy of that
 * policy as its first endpoint, so that the pattern parser is fuzzed with
 * matching right behind it.
 *
 * Besides the sanitizers, the harness checks what matching promises
 * (include/secshim/policy.h): a match is an enabled endpoint of the
 * policy, of the direction and port asked; the name set is only asked
 * about name endpoints; an IPv4-mapped IPv6 address matches as its IPv4
 * address; name comparison is symmetric. A broken promise aborts.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "secshim/common.h"
#include "secshim/policy.h"
#include "fuzzutil.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_QUERIES 32

/* Every kind of pattern, in an order where earlier entries shadow later
 * ones (the disabled one keeps one address of the prefix plaintext). */
static const char fixed_endpoints[] =
    "  { name = \"db\"; connect = \"db.example:5432\"; },\n"
    "  { name = \"plain\"; enabled = false; connect = \"10.20.5.9:7000\"; },\n"
    "  { name = \"stats\"; connect = \"10.20.0.0/16:7000\"; },\n"
    "  { name = \"agents\"; connect = \"[fd00:10::]/32:4999\"; },\n"
    "  { name = \"mapped\"; connect = \"[::ffff:10.0.0.0]/104:4999\"; },\n"
    "  { name = \"one6\"; connect = \"[2001:db8::7]:443\"; },\n"
    "  { name = \"local\"; connect = \"LocalHost.:443\"; },\n"
    "  { name = \"any\"; connect = \"*:443\"; },\n"
    "  { name = \"in-any\"; listen = \"*:3000\";\n"
    "    certificate = \"server.pem\"; certificate-key = \"server.key\"; },\n"
    "  { name = \"in-lo\"; listen = \"127.0.0.1:8443\";\n"
    "    certificate = \"server.pem\"; certificate-key = \"server.key\"; },\n"
    "  { name = \"in-lo6\"; listen = \"[::1]:8443\";\n"
    "    certificate = \"server.pem\"; certificate-key = \"server.key\"; },\n"
    "  { name = \"in-v4\"; listen = \"0.0.0.0:9000\";\n"
    "    certificate = \"server.pem\"; certificate-key = \"server.key\"; },\n"
    "  { name = \"in-v6\"; listen = \"[::]:9000\";\n"
    "    certificate = \"server.pem\"; certificate-key = \"server.key\"; },\n"
    "  { name = \"in-off\"; enabled = false; listen = \"*:9001\";\n"
    "    certificate = \"server.pem\"; certificate-key = \"server.key\"; }\n";

static const uint16_t policy_ports[] = {5432, 7000, 4999, 443, 3000,
                                        8443, 9000, 9001};

static struct ss_policy *fixed;

/* Writes and parses a policy whose first endpoint is first (NULL: none).
 * NULL when it does not parse. */
static struct ss_policy *parse_with(const char *first)
{
    static char text[8192];
    snprintf(text, sizeof(text),
             "version = 1;\n"
             "defaults = { trusted-ca = \"ca.pem\"; };\n"
             "endpoints = (\n%s%s);\n",
             first != NULL ? first : "", fixed_endpoints);
    const char *path = fz_write("match.cfg", text, strlen(text));
    struct ss_policy *p = NULL;
    struct ss_errbuf err = {{0}};
    if (ss_policy_parse(path, false, &p, &err) != SS_OK) {
        if (first == NULL) {
            fprintf(stderr, "fuzz_match: the fixed policy: %s\n", err.msg);
            abort();
        }
        return NULL;
    }
    return p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_dir();
    fz_quiet_log();
    fixed = parse_with(NULL);
    return 0;
}

/* A reader over the input that yields zeros once it is used up. */
struct reader {
    const uint8_t *p;
    size_t left;
};

static uint8_t take_byte(struct reader *r)
{
    if (r->left == 0)
        return 0;
    r->left--;
    return *r->p++;
}

static void take_bytes(struct reader *r, void *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)out)[i] = take_byte(r);
}

struct query {
    struct sockaddr_storage ss;
    socklen_t len;
    uint16_t port;
    uint32_t in_set_bits;
    char resolved[80];
};

/* The name set's answer for endpoint ep: one bit of the query's per
 * endpoint. Being asked about anything but a name endpoint breaks
 * ss_policy_match_connect's promise. */
struct in_set_arg {
    const struct ss_policy *p;
    uint32_t bits;
};

static bool fuzzed_in_set(const struct ss_endpoint *ep,
                          const struct ss_net_addr *a, void *arg)
{
    const struct in_set_arg *s = arg;
    (void)a;
    if (ep->match.kind != SS_HOST_NAME || ep->direction != SS_DIR_CONNECT)
        abort();
    size_t i = (size_t)(ep - s->p->endpoints);
    return (s->bits >> (i % 32)) & 1;
}

static void read_query(struct reader *r, struct query *q)
{
    memset(q, 0, sizeof(*q));
    uint8_t shape = take_byte(r);
    static const int families[] = {AF_INET, AF_INET6, AF_INET6, AF_UNIX};
    int family = families[shape & 3];
    uint8_t bytes[16];
    take_bytes(r, bytes, sizeof(bytes));
    uint8_t port_pick = take_byte(r);
    q->port = port_pick < 0xf0
                  ? policy_ports[port_pick % (sizeof(policy_ports) /
                                              sizeof(policy_ports[0]))]
                  : (uint16_t)(take_byte(r) << 8 | take_byte(r));
    /* Mostly a full address; sometimes mapped IPv4, sometimes a length
     * that is short or long, as a program may pass. */
    if (family == AF_INET6 && (shape & 4)) {
        memset(bytes, 0, 10);
        bytes[10] = bytes[11] = 0xff;
    }
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&q->ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(q->port);
        memcpy(&in->sin_addr, bytes, 4);
        q->len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&q->ss;
        in6->sin6_family = (sa_family_t)family;
        in6->sin6_port = htons(q->port);
        memcpy(&in6->sin6_addr, bytes, 16);
        q->len = sizeof(*in6);
    }
    if (shape & 8)
        q->len = (socklen_t)(take_byte(r) % (sizeof(q->ss) + 1));
    take_bytes(r, &q->in_set_bits, sizeof(q->in_set_bits));
    size_t n = take_byte(r) % sizeof(q->resolved);
    take_bytes(r, q->resolved, n);
    q->resolved[n] = '\0';
}

static void check_match(const struct ss_policy *p,
                        const struct ss_endpoint *ep, enum ss_direction dir,
                        const struct ss_net_addr *a)
{
    if (ep == NULL)
        return;
    if (ep < p->endpoints || ep >= p->endpoints + p->n_endpoints ||
        !ep->enabled || ep->direction != dir || a == NULL ||
        ep->match.port != a->port)
        abort();
}

/* The IPv4 address a mapped one stands for, as the program could have
 * passed it. */
static socklen_t unmapped(const struct query *q, struct sockaddr_in *out)
{
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&q->ss;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = in6->sin6_port;
    memcpy(&out->sin_addr, (const uint8_t *)&in6->sin6_addr + 12, 4);
    return sizeof(*out);
}

static void check_names(const char *a, const char *b)
{
    if (ss_host_name_equal(a, b) != ss_host_name_equal(b, a))
        abort();
    if (a != NULL && !ss_host_name_equal(a, a))
        abort();
}

static void run_query(const struct ss_policy *p, const struct query *q)
{
    const struct sockaddr *sa = (const struct sockaddr *)&q->ss;
    struct ss_net_addr a;
    bool valid = ss_net_addr_from_sockaddr(sa, q->len, &a);
    struct in_set_arg arg = {p, q->in_set_bits};
    const struct ss_endpoint *out =
        ss_policy_match_connect(p, sa, q->len, fuzzed_in_set, &arg);
    check_match(p, out, SS_DIR_CONNECT, valid ? &a : NULL);
    const struct ss_endpoint *out_no_names =
        ss_policy_match_connect(p, sa, q->len, NULL, NULL);
    check_match(p, out_no_names, SS_DIR_CONNECT, valid ? &a : NULL);
    if (out_no_names != NULL && out_no_names->match.kind == SS_HOST_NAME)
        abort();
    const struct ss_endpoint *in = ss_policy_match_listen(p, sa, q->len);
    check_match(p, in, SS_DIR_LISTEN, valid ? &a : NULL);

    if (valid && q->ss.ss_family == AF_INET6 && a.family == AF_INET) {
        struct sockaddr_in v4;
        socklen_t len = unmapped(q, &v4);
        const struct sockaddr *sa4 = (const struct sockaddr *)&v4;
        if (ss_policy_match_connect(p, sa4, len, fuzzed_in_set, &arg) != out ||
            ss_policy_match_listen(p, sa4, len) != in)
            abort();
    }
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct ss_endpoint *ep = &p->endpoints[i];
        (void)ss_policy_listen_serves(p, ep, sa, q->len, q->in_set_bits & 1);
        if (valid)
            (void)ss_host_pattern_has_addr(&ep->match, &a);
        check_names(q->resolved, ep->match.name);
    }
    check_names(q->resolved, NULL);
    if (out != NULL && valid) {
        char host[64];
        (void)ss_endpoint_tls_name(out, q->resolved, &a, host, sizeof(host));
        if (memchr(host, '\0', sizeof(host)) == NULL)
            abort();
    }
}

/* The endpoint given by the input: its address as text, refused when
 * it cannot stand in a libconfig string as written. */
static bool read_endpoint(struct reader *r, bool listen, char *out,
                          size_t len)
{
    char address[300];
    size_t n = take_byte(r) % 64;
    take_bytes(r, address, n);
    address[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (address[i] < 0x20 || address[i] > 0x7e || address[i] == '"' ||
            address[i] == '\\')
            return false;
    snprintf(out, len,
             "  { name = \"fuzzed\"; %s = \"%s\";%s },\n",
             listen ? "listen" : "connect", address,
             listen ? " certificate = \"server.pem\"; "
                      "certificate-key = \"server.key\";"
                    : "");
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    uint8_t mode = take_byte(&r);
    struct ss_policy *p = fixed;
    if (mode & 1) {
        char first[512];
        if (!read_endpoint(&r, mode & 2, first, sizeof(first)))
            return -1;
        p = parse_with(first);
        if (p == NULL)
            return 0;
    }
    for (int i = 0; i < MAX_QUERIES && r.left > 0; i++) {
        struct query q;
        read_query(&r, &q);
        run_query(p, &q);
    }
    if (p != fixed)
        ss_policy_unref(p);
    return 0;
}
