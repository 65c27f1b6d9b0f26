/*
 * secshim - the operator's command.
 *
 *   secshim run    [-c FILE] [--library PATH] [--compat] [--] PROGRAM [ARG...]
 *   secshim check  [-c FILE]
 *   secshim verify [-c FILE] [-e ENDPOINT] [--trusted PEM] [--untrusted PEM]
 *                  [--crl PEM] [--host NAME|ADDRESS] [--purpose server|client]
 *                  [--allow-peer ID]... [--at UNIX_TIME] [--compat]
 *                  [--no-x509-strict] [--security-level N] CERT.pem
 *   secshim probe  [--serve] [-c FILE] [-e ENDPOINT] ... (tools/probe.c)
 *   secshim status [--json | --prometheus]   (tools/status.c)
 *
 * Both use the engine exactly as the shim does, so what `check` accepts the
 * shim loads, and what `verify` accepts a handshake accepts.
 * Exit codes: 0 valid / OK, 1 invalid / FAIL, 2 usage errors; `run`
 * exits as the program does, or before starting it: 1 the policy does not
 * load, 2 usage, 126 the program cannot be protected, 127 not found.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "secshim/compat.h"
#include "secshim/fips.h"
#include "secshim/policy.h"
#include "secshim/tlsapi.h"
#include "secshim/tlsctx.h"
#include "secshim/verify.h"

#include "elfinfo.h"
#include "probe.h"
#include "status.h"

enum {
    EXIT_VALID = 0,
    EXIT_INVALID = 1,
    EXIT_USAGE = 2,
    EXIT_UNPROTECTABLE = 126, /* the shells' "found but cannot execute" */
    EXIT_NOT_FOUND = 127
};

static const char usage_text[] =
    "usage: secshim run    [-c FILE] [--library PATH] [--compat] [--]"
    " PROGRAM [ARG...]\n"
    "       secshim check  [-c FILE]\n"
    "       secshim verify [-c FILE] [-e ENDPOINT] [--trusted PEM]"
    " [--untrusted PEM]\n"
    "                      [--crl PEM] [--host NAME|ADDRESS]"
    " [--purpose server|client]\n"
    "                      [--allow-peer ID]... [--at UNIX_TIME] [--compat]\n"
    "                      [--no-x509-strict] [--security-level N]"
    " CERT.pem\n"
    "       secshim probe  [-c FILE] [-e ENDPOINT] HOST:PORT\n"
    "       secshim probe  --serve [-c FILE] [-e ENDPOINT] [--wait SECONDS]"
    " [HOST:]PORT\n"
    "       secshim status [--json | --prometheus]\n"
    "The policy file is -c FILE, else $SECSHIM_CONFIG, else "
    SS_DEFAULT_CONFIG_PATH ".\n";

static int usage(const char *complaint)
{
    if (complaint != NULL)
        fprintf(stderr, "secshim: %s\n", complaint);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static const char *policy_path(const char *given)
{
    if (given != NULL)
        return given;
    const char *env = getenv("SECSHIM_CONFIG");
    return env != NULL && env[0] != '\0' ? env : SS_DEFAULT_CONFIG_PATH;
}

/* Loads the policy with every enabled endpoint's TLS context built
 * (ss_policy_load), or prints the engine's file:line message: check, run
 * and verify find up front what the shim finds only at an endpoint's
 * first use (a key that does not match, a cipher list OpenSSL refuses). */
static struct ss_policy *load_policy(const char *path)
{
    struct ss_policy *policy = NULL;
    struct ss_errbuf err = {{0}};
    if (ss_policy_load(path, ss_compat_mode(), &policy, &err) != SS_OK) {
        fprintf(stderr, "secshim: %s\n", err.msg);
        return NULL;
    }
    return policy;
}

/* ---- run -------------------------------------------------------------- */

/* PROGRAM as execvp would find it, into buf; false when it is not found. */
static bool find_program(const char *name, char *buf, size_t len)
{
    if (strchr(name, '/') != NULL) {
        snprintf(buf, len, "%s", name);
        return access(buf, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    for (const char *dir = path ? path : "/usr/bin:/bin"; *dir != '\0';) {
        size_t n = strcspn(dir, ":");
        snprintf(buf, len, "%.*s/%s", (int)n, n ? dir : ".", name);
        if (access(buf, X_OK) == 0)
            return true;
        dir += n + (dir[n] == ':');
    }
    return false;
}

/*
 * The file the dynamic linker will load for path: path itself, or the
 * interpreter named on the #! line of a script. Returns false with a
 * message when it cannot be read.
 */
static bool loaded_binary(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "secshim: cannot open %s: %s\n", path,
                strerror(errno));
        return false;
    }
    char line[PATH_MAX + 3] = "";
    bool script = fgets(line, sizeof(line), f) != NULL &&
                  strncmp(line, "#!", 2) == 0;
    fclose(f);
    if (!script) {
        snprintf(buf, len, "%s", path);
        return true;
    }
    const char *interp = line + 2 + strspn(line + 2, " \t");
    snprintf(buf, len, "%.*s", (int)strcspn(interp, " \t\n"), interp);
    return true;
}

/*
 * Set-user-ID and set-group-ID programs run in the loader's secure-execution
 * mode whenever they change the caller's identity, and the loader then
 * ignores LD_PRELOAD (except for set-user-ID libraries in its standard
 * directories, which libsecshim.so is not): the program would run with
 * every connection in clear. Whether the identity changes depends on who
 * starts it, which a control agent may not be, so the bits alone decide.
 */
static const char *privilege_reason(const char *binary)
{
    struct stat st;
    if (stat(binary, &st) != 0)
        return NULL; /* elf_inspect has already reported what is wrong */
    if (st.st_mode & S_ISUID)
        return "is set-user-ID";
    if (st.st_mode & S_ISGID)
        return "is set-group-ID";
    return NULL;
}

/*
 * Whether LD_PRELOAD can protect the program at path. Statically linked
 * programs never run the dynamic linker; Go programs make their network
 * system calls themselves; set-user-ID and set-group-ID programs have
 * LD_PRELOAD dropped by the loader. Each would run with every connection
 * in clear, so they are refused with a message that says why.
 */
static int check_protectable(const char *path)
{
    char binary[PATH_MAX];
    if (!loaded_binary(path, binary, sizeof(binary)))
        return EXIT_UNPROTECTABLE;
    struct elf_info info;
    char why[PATH_MAX + 64];
    if (elf_inspect(binary, &info, why, sizeof(why)) != 0) {
        fprintf(stderr, "secshim: %s: refusing to run it unprotected\n", why);
        return EXIT_UNPROTECTABLE;
    }
    const char *reason = !info.dynamic ? "is statically linked"
                         : info.go     ? "is a Go program"
                                       : NULL;
    if (reason != NULL) {
        fprintf(stderr,
                "secshim: %s %s: its socket calls never reach libsecshim.so "
                "(LD_PRELOAD), so its connections cannot be protected; "
                "refusing to run it unprotected\n",
                binary, reason);
        return EXIT_UNPROTECTABLE;
    }
    reason = privilege_reason(binary);
    if (reason == NULL)
        return EXIT_VALID;
    fprintf(stderr,
            "secshim: %s %s: the dynamic linker ignores LD_PRELOAD for it "
            "(secure-execution mode), so its connections cannot be "
            "protected; refusing to run it unprotected\n",
            binary, reason);
    return EXIT_UNPROTECTABLE;
}

/*
 * The library `run` preloads, into buf: --library when given, else the
 * installed layout relative to this command (PREFIX/bin/secshim ->
 * PREFIX/lib/secshim/libsecshim.so), else libsecshim.so beside it (the
 * build tree, which the tests run). Relative to the command rather than
 * compiled in, so a package unpacked anywhere (dpkg -x, DESTDIR) still
 * finds its own library. Returns false, with the path tried last in buf,
 * when none is readable.
 */
static bool shim_library(const char *given, char *buf, size_t len)
{
    if (given != NULL) {
        snprintf(buf, len, "%s", given);
        return access(buf, R_OK) == 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return false;
    self[n] = '\0';
    const char *dir = dirname(self);
    char installed[PATH_MAX + 32];
    snprintf(installed, sizeof(installed), "%s/../lib/secshim/libsecshim.so",
             dir);
    /* realpath: LD_PRELOAD gets a clean absolute path, not "bin/../". */
    if (len >= PATH_MAX && realpath(installed, buf) != NULL &&
        access(buf, R_OK) == 0)
        return true;
    snprintf(buf, len, "%s/libsecshim.so", dir);
    return access(buf, R_OK) == 0;
}

/*
 * The library loads its TLS half, libsecshim-tls.so, from its own
 * directory at the program's first TLS context (include/secshim/
 * tlsapi.h): without it every endpoint of the program would fail, so run
 * refuses up front. Prints why and returns false when it is not there.
 */
static bool tls_half_beside(const char *shim)
{
    char copy[PATH_MAX], tls[PATH_MAX + 32];
    snprintf(copy, sizeof(copy), "%s", shim);
    snprintf(tls, sizeof(tls), "%s/" SS_TLS_LIBRARY, dirname(copy));
    if (access(tls, R_OK) == 0)
        return true;
    fprintf(stderr, "secshim: cannot find %s beside %s: %s\n",
            SS_TLS_LIBRARY, shim, strerror(errno));
    return false;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"library", required_argument, NULL, 'l'},
        {"compat", no_argument, NULL, 'C'},
        {NULL, 0, NULL, 0}};
    const char *config = NULL, *library = NULL;
    bool compat = false;
    int opt;
    /* "+": stop at the program's name; its own options are its own. */
    while ((opt = getopt_long(argc, argv, "+c:", longopts, NULL)) != -1) {
        if (opt == 'c')
            config = optarg;
        else if (opt == 'l')
            library = optarg;
        else if (opt == 'C')
            compat = true;
        else
            return usage(NULL);
    }
    if (optind >= argc)
        return usage("run needs a program");

    /* Before the policy is loaded: it is checked in the mode the program
     * will run in, and the program inherits the variable. */
    if (compat && setenv("GCTI_SECPACK_COMPAT_MODE", "1", 1) != 0) {
        fprintf(stderr, "secshim: out of memory\n");
        return EXIT_USAGE;
    }
    const char *path = policy_path(config);
    struct ss_policy *policy = load_policy(path); /* fail here, not later */
    if (policy == NULL)
        return EXIT_INVALID;
    ss_policy_unref(policy);

    char program[PATH_MAX], shim[PATH_MAX];
    if (!find_program(argv[optind], program, sizeof(program))) {
        fprintf(stderr, "secshim: %s: program not found\n", argv[optind]);
        return EXIT_NOT_FOUND;
    }
    int rc = check_protectable(program);
    if (rc != EXIT_VALID)
        return rc;
    if (!shim_library(library, shim, sizeof(shim))) {
        fprintf(stderr, "secshim: cannot find %s (--library PATH)\n", shim);
        return EXIT_USAGE;
    }
    if (!tls_half_beside(shim))
        return EXIT_USAGE;

    /* Libraries already in LD_PRELOAD stay, and stay first: some must be
     * (a sanitizer runtime); the shim interposes as well from behind. */
    const char *preload = getenv("LD_PRELOAD");
    char *value = NULL;
    if (asprintf(&value, "%s%s%s", preload ? preload : "",
                 preload && *preload ? ":" : "", shim) < 0 ||
        setenv("LD_PRELOAD", value, 1) != 0 ||
        setenv("SECSHIM_CONFIG", path, 1) != 0) {
        fprintf(stderr, "secshim: out of memory\n");
        return EXIT_USAGE;
    }
    free(value);
    execv(program, argv + optind);
    fprintf(stderr, "secshim: cannot run %s: %s\n", program, strerror(errno));
    return EXIT_UNPROTECTABLE;
}

/* ---- check ------------------------------------------------------------ */

static const char *or_dash(const char *s)
{
    return s != NULL ? s : "-";
}

/* fips140=no, or yes and the provider the context was built with (the
 * last fields of print_endpoint's line). */
static void print_fips(const struct ss_endpoint *ep)
{
    const char *provider = ss_fips_provider();
    if (!ep->fips140_enabled || ep->tls == NULL || provider == NULL) {
        printf("fips140=no");
        return;
    }
    printf("fips140=yes fips-provider=\"%s\"", provider);
}

static void print_endpoint(const struct ss_endpoint *ep, time_t now)
{
    char proto[128];
    char days[32] = "-";
    /* The level peer chains are held to: the built context's. */
    char level[16] = "-";
    if (ep->tls != NULL)
        snprintf(level, sizeof(level), "%d", ep->tls->verifier.security_level);
    if (ep->tls != NULL && ep->tls->own_cert != NULL)
        snprintf(days, sizeof(days), "%d",
                 ss_tlsctx_days_left(ep->tls, now));
    printf("%s: %s %s %s protocol=%s mutual=%s name-check=%s"
           " target-name=%s certificate=%s days-left=%s trusted-ca=%s"
           " crl=%s cipher-list=%s cipher-suites=%s"
           " handshake-timeout=%ds session-resumption=%s x509-strict=%s"
           " security-level=%s ",
           ep->name, ep->enabled ? "enabled" : "disabled",
           ep->direction == SS_DIR_CONNECT ? "connect" : "listen",
           ep->address, ss_protocol_describe(&ep->proto, proto, sizeof(proto)),
           ep->tls_mutual ? "yes" : "no",
           ep->direction == SS_DIR_CONNECT
               ? (ep->target_name_check ? "host" : "no")
               : "-",
           or_dash(ep->target_name), or_dash(ep->certificate), days,
           or_dash(ep->trusted_ca), or_dash(ep->tls_crl),
           or_dash(ep->cipher_list), or_dash(ep->cipher_suites),
           ep->handshake_timeout_ms / 1000,
           ep->session_resumption ? "yes" : "no",
           ep->x509_strict ? "yes" : "no", level);
    print_fips(ep);
    putchar('\n');
}

static int cmd_check(int argc, char **argv)
{
    const char *config = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt != 'c')
            return usage(NULL);
        config = optarg;
    }
    if (optind != argc)
        return usage("check takes no arguments");

    const char *path = policy_path(config);
    struct ss_policy *policy = load_policy(path);
    if (policy == NULL)
        return EXIT_INVALID;
    printf("%s: valid, %zu endpoint%s, compatibility mode %s\n", path,
           policy->n_endpoints, policy->n_endpoints == 1 ? "" : "s",
           policy->compat ? "on" : "off");
    time_t now = time(NULL);
    for (size_t i = 0; i < policy->n_endpoints; i++)
        print_endpoint(&policy->endpoints[i], now);
    ss_policy_unref(policy);
    return EXIT_VALID;
}

/* ---- verify ----------------------------------------------------------- */

struct verify_args {
    const char *config;
    const char *endpoint;
    const char *trusted;
    const char *untrusted;
    const char *crl;
    const char *host;
    const char *purpose;
    const char *at;
    bool compat;
    bool not_strict;        /* --no-x509-strict */
    const char *level;      /* --security-level, or NULL */
    const char *cert;
    /* --allow-peer, parsed; replaces the endpoint's allow-peer when given
     * (n > 0). Owned: freed by cmd_verify. */
    struct ss_peer_allow allow;
};

/* Reads every certificate of a PEM file, in order. NULL when none. */
static STACK_OF(X509) *read_certs(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "secshim: cannot open %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    while (certs != NULL && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
        sk_X509_push(certs, x);
    fclose(f);
    ERR_clear_error(); /* the read that ended the loop left "no start line" */
    if (certs == NULL || sk_X509_num(certs) == 0) {
        fprintf(stderr, "secshim: %s holds no PEM certificate\n", path);
        sk_X509_pop_free(certs, X509_free);
        return NULL;
    }
    return certs;
}

/* One --allow-peer ID, checked as the policy checks allow-peer. Returns
 * EXIT_VALID or, with the reason on stderr, EXIT_USAGE. */
static int add_allow_peer(struct ss_peer_allow *allow, const char *text)
{
    char why[512];
    int rc = ss_peer_allow_add(allow, text, why, sizeof(why));
    if (rc == SS_OK)
        return EXIT_VALID;
    if (rc == SS_ERR_NOMEM)
        snprintf(why, sizeof(why), "out of memory");
    char complaint[600];
    snprintf(complaint, sizeof(complaint), "--allow-peer %s", why);
    return usage(complaint);
}

static int parse_verify_args(int argc, char **argv, struct verify_args *a)
{
    static const struct option longopts[] = {
        {"trusted", required_argument, NULL, 't'},
        {"untrusted", required_argument, NULL, 'u'},
        {"crl", required_argument, NULL, 'r'},
        {"host", required_argument, NULL, 'h'},
        {"purpose", required_argument, NULL, 'p'},
        {"at", required_argument, NULL, 'a'},
        {"compat", no_argument, NULL, 'C'},
        {"allow-peer", required_argument, NULL, 'P'},
        {"no-x509-strict", no_argument, NULL, 'S'},
        {"security-level", required_argument, NULL, 'L'},
        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:e:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': a->config = optarg; break;
        case 'e': a->endpoint = optarg; break;
        case 't': a->trusted = optarg; break;
        case 'u': a->untrusted = optarg; break;
        case 'r': a->crl = optarg; break;
        case 'h': a->host = optarg; break;
        case 'p': a->purpose = optarg; break;
        case 'a': a->at = optarg; break;
        case 'C': a->compat = true; break;
        case 'S': a->not_strict = true; break;
        case 'L': a->level = optarg; break;
        case 'P':
            if (add_allow_peer(&a->allow, optarg) != EXIT_VALID)
                return EXIT_USAGE;
            break;
        default: return usage(NULL);
        }
    }
    if (optind + 1 != argc)
        return usage("verify takes exactly one certificate file");
    a->cert = argv[optind];
    if (a->purpose != NULL && strcmp(a->purpose, "server") != 0 &&
        strcmp(a->purpose, "client") != 0)
        return usage("--purpose is server or client");
    if (a->config != NULL && a->endpoint == NULL)
        return usage("-c needs -e ENDPOINT to say which endpoint's settings");
    if (a->level != NULL &&
        (strlen(a->level) != 1 || a->level[0] < '0' || a->level[0] > '5'))
        return usage("--security-level is 0, 1, 2, 3, 4 or 5");
    return EXIT_VALID;
}

static const struct ss_endpoint *find_endpoint(const struct ss_policy *p,
                                               const char *name)
{
    for (size_t i = 0; i < p->n_endpoints; i++)
        if (strcmp(p->endpoints[i].name, name) == 0)
            return &p->endpoints[i];
    return NULL;
}

/*
 * The name a handshake of ep would check: tls-target-name, else the host
 * of a connect endpoint when it is a name or an address (not a wildcard or
 * a CIDR); NULL when the endpoint checks no name.
 */
static const char *endpoint_host(const struct ss_endpoint *ep, char *buf,
                                 size_t len)
{
    if (ep->direction != SS_DIR_CONNECT || !ep->target_name_check)
        return NULL;
    if (ep->target_name != NULL)
        return ep->target_name;
    if (ep->match.kind != SS_HOST_NAME && ep->match.kind != SS_HOST_ADDR)
        return NULL;
    /* The address as written, without its port and IPv6 brackets. */
    const char *colon = strrchr(ep->address, ':');
    size_t n = colon != NULL ? (size_t)(colon - ep->address) : 0;
    const char *start = ep->address;
    if (n >= 2 && start[0] == '[' && start[n - 1] == ']') {
        start++;
        n -= 2;
    }
    if (n == 0 || n >= len)
        return NULL;
    memcpy(buf, start, n);
    buf[n] = '\0';
    return buf;
}

static bool parse_time(const char *text, time_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || v <= 0)
        return false;
    *out = (time_t)v;
    return true;
}

static void print_result(const struct ss_verify_result *res)
{
    for (unsigned bit = 0; bit < 2; bit++) {
        if (res->relaxations & (1u << bit))
            printf("relaxed (compatibility mode): %s: %s\n",
                   ss_relaxation_name((enum ss_relaxation)(1u << bit)),
                   res->relaxed_subject[bit]);
    }
    if (res->ok)
        printf("OK\n");
    else
        printf("FAIL: %s\n", res->reason);
}

/* Settings of the endpoint, overridden by the flags. */
struct verify_settings {
    const char *trusted;
    const char *crl;
    const char *host;
    enum ss_purpose purpose;
    bool compat;
    bool x509_strict;
    int security_level; /* -1: a new context's (ss_verifier_init's) */
    const struct ss_peer_allow *allow; /* borrowed; NULL: none */
    char host_buf[256];
};

static void settings_from_endpoint(struct verify_settings *s,
                                   const struct ss_endpoint *ep)
{
    s->trusted = ep->trusted_ca;
    s->crl = ep->tls_crl;
    s->host = endpoint_host(ep, s->host_buf, sizeof(s->host_buf));
    s->purpose = ep->direction == SS_DIR_CONNECT ? SS_PURPOSE_SERVER
                                                 : SS_PURPOSE_CLIENT;
    s->allow = &ep->allow_peer;
    /* The profile exactly as the endpoint's handshakes apply it: the
     * policy loaded with every context built, so the level is the one
     * its context has (protocols, cipher-list; tlsctx.c). A disabled
     * endpoint has no context and does no handshake: a new context's. */
    s->x509_strict = ep->x509_strict;
    const struct ss_tlsctx *t = ss_endpoint_tls(ep);
    if (t != NULL)
        s->security_level = t->verifier.security_level;
}

static void settings_from_flags(struct verify_settings *s,
                                const struct verify_args *a)
{
    if (a->trusted != NULL)
        s->trusted = a->trusted;
    if (a->crl != NULL)
        s->crl = a->crl;
    if (a->host != NULL)
        s->host = a->host;
    if (a->purpose != NULL)
        s->purpose = strcmp(a->purpose, "client") == 0 ? SS_PURPOSE_CLIENT
                                                       : SS_PURPOSE_SERVER;
    s->compat = a->compat || ss_compat_mode();
    if (a->not_strict)
        s->x509_strict = false;
    if (a->level != NULL)
        s->security_level = a->level[0] - '0';
    if (a->allow.n > 0)
        s->allow = &a->allow;
}

static int run_verify(const struct verify_settings *s, STACK_OF(X509) *chain,
                      STACK_OF(X509) *extra, time_t at)
{
    struct ss_verifier verifier = {0};
    struct ss_errbuf err = {{0}};
    if (ss_verifier_init(&verifier, s->trusted, s->crl, s->purpose,
                         s->compat, &err) != SS_OK) {
        fprintf(stderr, "secshim: %s\n", err.msg);
        return EXIT_USAGE;
    }
    /* allow-peer and the profile as the endpoint's context applies them
     * (tlsctx.c). */
    verifier.allow_peer = s->allow;
    verifier.x509_strict = s->x509_strict;
    if (s->security_level >= 0)
        verifier.security_level = s->security_level;
    /* The leaf is the first certificate; the rest of its file and the
     * --untrusted file are the intermediates a peer would send. */
    X509 *leaf = sk_X509_shift(chain);
    while (extra != NULL && sk_X509_num(extra) > 0)
        sk_X509_push(chain, sk_X509_shift(extra));
    struct ss_verify_result res;
    memset(&res, 0, sizeof(res));
    int rc = ss_verify_chain(&verifier, leaf, chain, s->host, at, &res);
    X509_free(leaf);
    ss_verifier_free(&verifier);
    if (rc != SS_OK && rc != SS_ERR_VERIFY) {
        fprintf(stderr, "secshim: verification could not run: %s\n",
                ss_strerror(rc));
        return EXIT_USAGE;
    }
    print_result(&res);
    return res.ok ? EXIT_VALID : EXIT_INVALID;
}

/* cmd_verify once its arguments are parsed. */
static int verify_with_args(const struct verify_args *a)
{
    int rc;

    time_t at = 0;
    if (a->at != NULL && !parse_time(a->at, &at))
        return usage("--at takes seconds since the epoch");

    struct verify_settings s = {.x509_strict = true, .security_level = -1};
    struct ss_policy *policy = NULL;
    if (a->endpoint != NULL) {
        policy = load_policy(policy_path(a->config));
        if (policy == NULL)
            return EXIT_USAGE;
        const struct ss_endpoint *ep = find_endpoint(policy, a->endpoint);
        if (ep == NULL) {
            fprintf(stderr, "secshim: no endpoint named '%s'\n", a->endpoint);
            ss_policy_unref(policy);
            return EXIT_USAGE;
        }
        settings_from_endpoint(&s, ep);
    }
    settings_from_flags(&s, a);

    STACK_OF(X509) *chain = read_certs(a->cert);
    STACK_OF(X509) *extra = a->untrusted ? read_certs(a->untrusted) : NULL;
    if (chain == NULL || (a->untrusted != NULL && extra == NULL))
        rc = EXIT_USAGE;
    else
        rc = run_verify(&s, chain, extra, at);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(extra, X509_free);
    ss_policy_unref(policy); /* after run_verify: s points into it */
    return rc;
}

static int cmd_verify(int argc, char **argv)
{
    struct verify_args a = {0};
    int rc = parse_verify_args(argc, argv, &a);
    if (rc == EXIT_VALID)
        rc = verify_with_args(&a);
    ss_peer_allow_free(&a.allow);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(NULL);
    /* Only ever stderr: stdout carries the command's answer. */
    ss_log_configure(SS_LOG_WARNING, "stderr", NULL);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "probe") == 0)
        return cmd_probe(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return EXIT_VALID;
    }
    return usage("unknown command");
}
