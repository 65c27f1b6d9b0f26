/*
 * fuzz_policy.c - libFuzzer harness for the policy parser (docs/testing.md,
 * "Fuzzing").
 *
 * The input is the text of a policy file. It is written to policy.cfg in
 * the harness's temporary directory, beside the PKI of tools/secshim-pki,
 * so that relative names such as "server.pem" name files that exist and
 * the parser goes on to validate what follows them. A policy that parses
 * is then used the way the shim and the CLI use one: every enabled
 * endpoint's TLS context is built (ss_policy_build_all: certificates,
 * keys, cipher lists, versions), and connect and listen matching is asked
 * about a few addresses, so that what the parser accepted is exercised
 * too.
 *
 * Inputs that could name something other than a regular file outside the
 * temporary directory are skipped: an @include of /dev/zero, or a
 * certificate read from a FIFO, would block or read forever, which is the
 * host's business, not the parser's.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "secshim/common.h"
#include "secshim/policy.h"
#include "fuzzutil.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_dir();
    fz_quiet_log();
    return 0;
}

static bool contains(const uint8_t *data, size_t size, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp(data + i, word, n) == 0)
            return true;
    return false;
}

/* Whether the input could reach a file that blocks or never ends. */
static bool reaches_special_files(const uint8_t *data, size_t size)
{
    static const char *const words[] = {"@", "/dev", "/proc", "/sys",
                                        "/run", "\\x"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (contains(data, size, words[i]))
            return true;
    return false;
}

/* Whether every file of a comma list is a regular file (so that building
 * a context reads it to its end). */
static bool regular_files(const char *list)
{
    if (list == NULL)
        return true;
    char *copy = strdup(list);
    if (copy == NULL)
        return false;
    bool ok = true;
    char *save = NULL;
    for (char *f = strtok_r(copy, ",", &save); f != NULL && ok;
         f = strtok_r(NULL, ",", &save)) {
        struct stat st;
        ok = stat(f, &st) == 0 && S_ISREG(st.st_mode);
    }
    free(copy);
    return ok;
}

static bool endpoint_files_regular(const struct ss_endpoint *ep)
{
    return regular_files(ep->certificate) &&
           regular_files(ep->certificate_key) &&
           regular_files(ep->trusted_ca) && regular_files(ep->tls_crl);
}

static socklen_t make_addr(struct sockaddr_storage *ss, int family,
                           const char *text, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        inet_pton(AF_INET, text, &in->sin_addr);
        return sizeof(*in);
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    inet_pton(AF_INET6, text, &in6->sin6_addr);
    return sizeof(*in6);
}

static bool name_set_says_yes(const struct ss_endpoint *ep,
                              const struct ss_net_addr *a, void *arg)
{
    (void)a;
    (void)arg;
    return ss_endpoint_unresolved_matches(ep);
}

/* A matched endpoint must be one of p's, enabled, of the direction
 * asked and of the port asked: anything else is a matching bug. */
static void check_match(const struct ss_policy *p,
                        const struct ss_endpoint *ep, enum ss_direction dir,
                        uint16_t port)
{
    if (ep == NULL)
        return;
    if (ep < p->endpoints || ep >= p->endpoints + p->n_endpoints ||
        !ep->enabled || ep->direction != dir || ep->match.port != port)
        abort();
}

/* Matching on each endpoint's own port, for a few addresses. */
static void exercise_matching(const struct ss_policy *p)
{
    static const struct {
        int family;
        const char *text;
    } addrs[] = {{AF_INET, "127.0.0.1"}, {AF_INET, "10.20.5.9"},
                 {AF_INET, "0.0.0.0"},   {AF_INET6, "::1"},
                 {AF_INET6, "::ffff:10.20.5.9"}, {AF_INET6, "::"},
                 {AF_INET6, "fd00:10::1"}};
    for (size_t i = 0; i < p->n_endpoints; i++) {
        uint16_t port = p->endpoints[i].match.port;
        for (size_t k = 0; k < sizeof(addrs) / sizeof(addrs[0]); k++) {
            struct sockaddr_storage ss;
            socklen_t len = make_addr(&ss, addrs[k].family, addrs[k].text,
                                      port);
            const struct sockaddr *sa = (const struct sockaddr *)&ss;
            check_match(p, ss_policy_match_connect(p, sa, len,
                                                   name_set_says_yes, NULL),
                        SS_DIR_CONNECT, port);
            check_match(p, ss_policy_match_listen(p, sa, len), SS_DIR_LISTEN,
                        port);
            (void)ss_policy_listen_serves(p, &p->endpoints[i], sa, len,
                                          k % 2 == 0);
            struct ss_net_addr a;
            char host[300];
            if (p->endpoints[i].direction == SS_DIR_CONNECT &&
                ss_net_addr_from_sockaddr(sa, len, &a))
                (void)ss_endpoint_tls_name(&p->endpoints[i], NULL, &a, host,
                                           sizeof(host));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (reaches_special_files(data, size))
        return -1; /* not added to the corpus */
    const char *path = fz_write("policy.cfg", data, size);
    struct ss_policy *p = NULL;
    struct ss_errbuf err = {{0}};
    int rc = ss_policy_parse(path, false, &p, &err);
    if (rc != SS_OK) {
        /* Every refusal names what is wrong (docs/policy.md). */
        if (p != NULL || err.msg[0] == '\0')
            abort();
        return 0;
    }
    exercise_matching(p);
    bool buildable = true;
    for (size_t i = 0; i < p->n_endpoints; i++)
        buildable = buildable && endpoint_files_regular(&p->endpoints[i]);
    if (buildable) {
        struct ss_errbuf build_err = {{0}};
        if (ss_policy_build_all(p, &build_err) != SS_OK &&
            build_err.msg[0] == '\0')
            abort();
    }
    ss_policy_unref(p);
    return 0;
}
