/*
 * policy.c - the policy file as an immutable, ref-counted snapshot, and
 * endpoint matching (see policy.h; docs/policy.md is the operator's page).
 *
 * Loading runs in passes so that nothing is ever half-applied:
 *   1. libconfig parses the file. Every setting of `defaults` and of each
 *      endpoint is type-checked and checked on its own (files readable,
 *      names and protocol settings valid) into a struct optset;
 *   2. each endpoint's optset is merged over the defaults, its address is
 *      parsed and the rules that span options are checked;
 *   3. every enabled endpoint gets its TLS context (tlsctx.c): all at once
 *      (ss_policy_load, ss_policy_build_all) or each at its first need
 *      (ss_policy_tls), under the build lock.
 * A snapshot is returned only when passes 1 and 2 (and, for
 * ss_policy_load, 3) succeed; on any failure everything built so far is
 * freed and err holds one line naming the file, the line and the option.
 * A context built later is published into the snapshot once complete
 * (docs/design.md, "When TLS contexts are built").
 */
#include "secshim/policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "secshim/alloc.h"
#include "secshim/tlsctx.h"

/* The only format version this code reads. */
#define POLICY_VERSION 1
/* Upper bound of handshake-timeout: a day, far below INT_MAX ms. */
#define MAX_HANDSHAKE_TIMEOUT_S 86400

/* ------------------------------------------------------------------ */
/* Option table                                                        */

enum opt_type {
    T_STRING,  /* a non-empty string */
    T_FILES,   /* a comma-separated list of readable files */
    T_FILE,    /* one readable file */
    T_BOOL,
    T_SECONDS, /* an integer number of seconds, 1..MAX_HANDSHAKE_TIMEOUT_S */
    T_STRINGS, /* a list or array of non-empty strings */
    T_PEER_IDS /* allow-peer: a list or array of identities (peerid.h) */
};

struct opt_spec {
    const char *name;  /* as written in the file */
    enum opt_type type;
    bool per_endpoint; /* may not stand in defaults */
};

/* Indexed by enum ss_opt. */
static const struct opt_spec opt_specs[SS_OPT_COUNT] = {
    [SS_OPT_NAME] = {"name", T_STRING, true},
    [SS_OPT_ENABLED] = {"enabled", T_BOOL, false},
    [SS_OPT_CONNECT] = {"connect", T_STRING, true},
    [SS_OPT_LISTEN] = {"listen", T_STRING, true},
    [SS_OPT_CERTIFICATE] = {"certificate", T_FILES, false},
    [SS_OPT_CERTIFICATE_KEY] = {"certificate-key", T_FILE, false},
    [SS_OPT_TRUSTED_CA] = {"trusted-ca", T_FILES, false},
    [SS_OPT_TLS_CRL] = {"tls-crl", T_FILES, false},
    [SS_OPT_TLS_MUTUAL] = {"tls-mutual", T_BOOL, false},
    [SS_OPT_TARGET_NAME_CHECK] = {"tls-target-name-check", T_STRING, false},
    [SS_OPT_TARGET_NAME] = {"tls-target-name", T_STRING, false},
    [SS_OPT_SEC_PROTOCOL] = {"sec-protocol", T_STRING, false},
    [SS_OPT_TLS_VERSION] = {"tls-version", T_STRING, false},
    [SS_OPT_PROTOCOL_LIST] = {"protocol-list", T_STRINGS, false},
    [SS_OPT_CIPHER_LIST] = {"cipher-list", T_STRING, false},
    [SS_OPT_CIPHER_SUITES] = {"cipher-suites", T_STRING, false},
    [SS_OPT_HANDSHAKE_TIMEOUT] = {"handshake-timeout", T_SECONDS, false},
    [SS_OPT_FIPS140_ENABLED] = {"fips140-enabled", T_BOOL, false},
    [SS_OPT_TLS_UNEXPECTED_EOF] = {"tls-unexpected-eof", T_STRING, false},
    [SS_OPT_SESSION_RESUMPTION] = {"session-resumption", T_BOOL, false},
    [SS_OPT_ALLOW_PEER] = {"allow-peer", T_PEER_IDS, false},
    [SS_OPT_X509_STRICT] = {"x509-strict", T_BOOL, false},
};

const char *ss_opt_name(enum ss_opt opt)
{
    if ((unsigned)opt >= SS_OPT_COUNT)
        return "unknown";
    return opt_specs[opt].name;
}

static int opt_by_name(const char *name)
{
    for (int i = 0; i < SS_OPT_COUNT; i++)
        if (strcmp(opt_specs[i].name, name) == 0)
            return i;
    return -1;
}

/* The three protocol options are one setting for inheritance. */
static bool is_protocol_opt(int opt)
{
    return opt == SS_OPT_SEC_PROTOCOL || opt == SS_OPT_TLS_VERSION ||
           opt == SS_OPT_PROTOCOL_LIST;
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */

/*
 * Where a message comes from: "defaults", "endpoint 'db'", "endpoint #3"
 * (before its name is known) or "log".
 */
struct scope {
    const char *path;
    char label[320];
};

static void scope_set(struct scope *s, const char *path, const char *fmt,
                      ...) __attribute__((format(printf, 3, 4)));

static void scope_set(struct scope *s, const char *path, const char *fmt,
                      ...)
{
    s->path = path;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->label, sizeof(s->label), fmt, ap);
    va_end(ap);
}

/* "PATH:LINE: " or "PATH: " when there is no line. */
static void format_where(char *buf, size_t len, const char *path, int line)
{
    if (line > 0)
        snprintf(buf, len, "%s:%d", path, line);
    else
        snprintf(buf, len, "%s", path);
}

static int scope_failv(struct ss_errbuf *err, int code, const char *path,
                       int line, const char *label, const char *opt,
                       const char *fmt, va_list ap)
{
    char what[768];
    char where[320];
    vsnprintf(what, sizeof(what), fmt, ap);
    format_where(where, sizeof(where), path, line);
    if (opt == NULL)
        return ss_fail(err, code, "%s: %s: %s", where, label, what);
    return ss_fail(err, code, "%s: %s: option '%s': %s", where, label, opt,
                   what);
}

/* "PATH:LINE: SCOPE: option 'OPT': what"; returns code. */
static int opt_fail(struct ss_errbuf *err, int code, const struct scope *s,
                    int line, const char *opt, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int opt_fail(struct ss_errbuf *err, int code, const struct scope *s,
                    int line, const char *opt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = scope_failv(err, code, s->path, line, s->label, opt, fmt, ap);
    va_end(ap);
    return rc;
}

/* "PATH:LINE: what" for top-level problems; returns code. */
static int file_fail(struct ss_errbuf *err, int code, const char *path,
                     int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int file_fail(struct ss_errbuf *err, int code, const char *path,
                     int line, const char *fmt, ...)
{
    char what[768];
    char where[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    format_where(where, sizeof(where), path, line);
    return ss_fail(err, code, "%s: %s", where, what);
}

static int nomem(struct ss_errbuf *err)
{
    return ss_fail(err, SS_ERR_NOMEM, "out of memory while loading the "
                                      "policy");
}

int ss_endpoint_fail(struct ss_errbuf *err, int code, const char *path,
                     const struct ss_endpoint *ep, enum ss_opt opt,
                     const char *fmt, ...)
{
    char label[320];
    int line = 0;
    if (ep != NULL) {
        /* An option that was never set is blamed on the endpoint's group,
         * which is where it is missing. */
        line = (unsigned)opt < SS_OPT_COUNT && ep->opt_line[opt] > 0
                   ? ep->opt_line[opt]
                   : ep->line;
        snprintf(label, sizeof(label), "endpoint '%s'",
                 ep->name != NULL ? ep->name : "?");
    } else {
        snprintf(label, sizeof(label), "policy");
    }
    va_list ap;
    va_start(ap, fmt);
    int rc = scope_failv(err, code, path != NULL ? path : "(policy)", line,
                         label, ss_opt_name(opt), fmt, ap);
    va_end(ap);
    return rc;
}

/* ------------------------------------------------------------------ */
/* One group's options before merging                                  */

struct optset {
    int line[SS_OPT_COUNT];  /* 0: not set */
    char *str[SS_OPT_COUNT]; /* string and file-list values (files resolved) */
    bool flag[SS_OPT_COUNT]; /* boolean values */
    int seconds;             /* handshake-timeout */
    char **list;             /* protocol-list */
    size_t list_len;
    struct ss_peer_allow allow; /* allow-peer, parsed */
};

static void optset_free(struct optset *o)
{
    for (int i = 0; i < SS_OPT_COUNT; i++)
        free(o->str[i]);
    for (size_t i = 0; i < o->list_len; i++)
        free(o->list[i]);
    free(o->list);
    ss_peer_allow_free(&o->allow);
    memset(o, 0, sizeof(*o));
}

static int copy_list(struct optset *dst, const struct optset *src)
{
    if (src->list_len == 0)
        return SS_OK;
    dst->list = ss_calloc(src->list_len, sizeof(*dst->list));
    SS_ENSURE(dst->list != NULL, SS_ERR_NOMEM);
    for (size_t i = 0; i < src->list_len; i++) {
        dst->list[i] = ss_strdup(src->list[i]);
        SS_ENSURE(dst->list[i] != NULL, SS_ERR_NOMEM);
        dst->list_len = i + 1;
    }
    return SS_OK;
}

/* Copies one option's value and line from src into dst. */
static int copy_opt(struct optset *dst, const struct optset *src, int opt)
{
    dst->line[opt] = src->line[opt];
    dst->flag[opt] = src->flag[opt];
    if (opt == SS_OPT_HANDSHAKE_TIMEOUT)
        dst->seconds = src->seconds;
    if (opt == SS_OPT_PROTOCOL_LIST)
        return copy_list(dst, src);
    if (opt == SS_OPT_ALLOW_PEER)
        return ss_peer_allow_copy(&dst->allow, &src->allow);
    if (src->str[opt] != NULL) {
        dst->str[opt] = ss_strdup(src->str[opt]);
        SS_ENSURE(dst->str[opt] != NULL, SS_ERR_NOMEM);
    }
    return SS_OK;
}

static bool sets_protocol(const struct optset *o)
{
    return o->line[SS_OPT_SEC_PROTOCOL] || o->line[SS_OPT_TLS_VERSION] ||
           o->line[SS_OPT_PROTOCOL_LIST];
}

/*
 * Fills the options ep did not set from defs. The protocol options count
 * as one: an endpoint that sets any of them takes none from defaults, so
 * `tls-version` in an endpoint overrides `sec-protocol` in defaults.
 */
static int optset_inherit(struct optset *ep, const struct optset *defs)
{
    bool own_protocol = sets_protocol(ep);
    for (int i = 0; i < SS_OPT_COUNT; i++) {
        if (ep->line[i] != 0 || defs->line[i] == 0)
            continue;
        if (own_protocol && is_protocol_opt(i))
            continue;
        SS_GUARD(copy_opt(ep, defs, i));
    }
    return SS_OK;
}

/* The protocol option a protocol error is blamed on: the last one set. */
static int protocol_opt(const struct optset *o)
{
    int best = SS_OPT_SEC_PROTOCOL;
    int best_line = -1;
    for (int i = 0; i < SS_OPT_COUNT; i++) {
        if (is_protocol_opt(i) && o->line[i] > best_line && o->line[i]) {
            best = i;
            best_line = o->line[i];
        }
    }
    return best;
}

/* ss_protocol_parse on o's three settings, its message prefixed. */
static int resolve_protocol(const struct optset *o, const struct scope *s,
                            struct ss_proto *out, struct ss_errbuf *err)
{
    struct ss_errbuf why = {{0}};
    int rc = ss_protocol_parse(o->str[SS_OPT_SEC_PROTOCOL],
                               o->str[SS_OPT_TLS_VERSION],
                               (const char *const *)o->list, o->list_len,
                               out, &why);
    if (rc >= 0)
        return SS_OK;
    int opt = protocol_opt(o);
    return opt_fail(err, rc, s, o->line[opt], opt_specs[opt].name, "%s",
                    why.msg);
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

/* 0 when path can be opened for reading and is not a directory, else
 * the errno that says why. */
static int readable_errno(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : (S_ISDIR(st.st_mode) ? EISDIR : 0);
    close(fd);
    return e;
}

/*
 * A relative file name is relative to the policy file's directory, not to
 * the working directory of whatever program the shim is preloaded into.
 * Returns a new string or NULL when out of memory.
 */
static char *resolve_path(const char *policy_path, const char *file,
                          size_t file_len)
{
    const char *slash = strrchr(policy_path, '/');
    size_t dir_len = file[0] == '/' || slash == NULL
                         ? 0
                         : (size_t)(slash - policy_path) + 1;
    char *out = ss_malloc(dir_len + file_len + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, policy_path, dir_len);
    memcpy(out + dir_len, file, file_len);
    out[dir_len + file_len] = '\0';
    return out;
}

/* Appends ",item" (or "item" first) to *acc. */
static int append_item(char **acc, const char *item)
{
    size_t old = *acc != NULL ? strlen(*acc) : 0;
    char *grown = ss_realloc(*acc, old + strlen(item) + 2);
    SS_ENSURE(grown != NULL, SS_ERR_NOMEM);
    if (old > 0)
        grown[old++] = ',';
    strcpy(grown + old, item);
    *acc = grown;
    return SS_OK;
}

/* Resolves and checks one file name of a list; appends it to *acc. */
static int add_file(const struct scope *s, int line, const char *opt,
                    const char *start, size_t len, char **acc,
                    struct ss_errbuf *err)
{
    while (len > 0 && isspace((unsigned char)start[0])) {
        start++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)start[len - 1]))
        len--;
    if (len == 0)
        return opt_fail(err, SS_ERR_CONFIG, s, line, opt,
                        "empty file name in the list");
    char *path = resolve_path(s->path, start, len);
    if (path == NULL)
        return nomem(err);
    int e = readable_errno(path);
    int rc = e != 0 ? opt_fail(err, SS_ERR_IO, s, line, opt,
                               "cannot read '%s': %s", path, strerror(e))
                    : append_item(acc, path);
    free(path);
    return rc == SS_ERR_NOMEM ? nomem(err) : rc;
}

/* Splits value at commas (when list), checks every file, and stores the
 * resolved list in *out. */
static int parse_files(const struct scope *s, int line, const char *opt,
                       const char *value, bool list, char **out,
                       struct ss_errbuf *err)
{
    char *acc = NULL;
    const char *p = value;
    for (;;) {
        const char *comma = list ? strchr(p, ',') : NULL;
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        int rc = add_file(s, line, opt, p, len, &acc, err);
        if (rc < 0) {
            free(acc);
            return rc;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *out = acc;
    return SS_OK;
}

/* A DNS name (ss_dns_name_valid), with one trailing dot allowed. */
static bool valid_dns_name(const char *name, size_t len)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    return ss_dns_name_valid(name, len);
}

/* Only digits and dots: meant as an IPv4 address, never a name. */
static bool looks_numeric(const char *text)
{
    return text[0] != '\0' && strspn(text, "0123456789.") == strlen(text);
}

static bool valid_target_name(const char *name)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET6, name, buf) == 1 ||
        inet_pton(AF_INET, name, buf) == 1)
        return true;
    return !looks_numeric(name) && valid_dns_name(name, strlen(name));
}

/* Checks of a string option's value that need no other option. */
static int check_string(const struct scope *s, int line, int opt,
                        const char *value, struct ss_errbuf *err)
{
    const char *name = opt_specs[opt].name;
    if (value[0] == '\0')
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "must not be empty");
    if (opt == SS_OPT_TARGET_NAME_CHECK && strcmp(value, "host") != 0 &&
        strcmp(value, "no") != 0)
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "'%s' is not valid: use \"host\" or \"no\"", value);
    if (opt == SS_OPT_TLS_UNEXPECTED_EOF && strcmp(value, "error") != 0 &&
        strcmp(value, "eof") != 0)
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "'%s' is not valid: use \"error\" or \"eof\"",
                        value);
    if (opt == SS_OPT_TARGET_NAME && !valid_target_name(value))
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "'%s' is neither a DNS name nor an IP address",
                        value);
    return SS_OK;
}

static bool is_int(const config_setting_t *st)
{
    int t = config_setting_type(st);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static int parse_seconds(const struct scope *s, int line, const char *name,
                         const config_setting_t *st, int *out,
                         struct ss_errbuf *err)
{
    if (!is_int(st))
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "expected an integer (seconds)");
    long long v = config_setting_get_int64(st);
    if (v < 1 || v > MAX_HANDSHAKE_TIMEOUT_S)
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "%lld is out of range: use 1 to %d seconds", v,
                        MAX_HANDSHAKE_TIMEOUT_S);
    *out = (int)v;
    return SS_OK;
}

/* protocol-list: a list ( ... ) or array [ ... ] of non-empty strings. */
static int parse_strings(const struct scope *s, int line, const char *name,
                         const config_setting_t *st, struct optset *o,
                         struct ss_errbuf *err)
{
    if (!config_setting_is_list(st) && !config_setting_is_array(st))
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "expected a list of strings");
    int n = config_setting_length(st);
    if (n == 0)
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "must name at least one version");
    o->list = ss_calloc((size_t)n, sizeof(*o->list));
    if (o->list == NULL)
        return nomem(err);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(st, (unsigned)i);
        const char *v = config_setting_get_string(e);
        if (v == NULL || v[0] == '\0')
            return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                            "element %d: expected a non-empty string",
                            i + 1);
        o->list[i] = ss_strdup(v);
        if (o->list[i] == NULL)
            return nomem(err);
        o->list_len = (size_t)i + 1;
    }
    return SS_OK;
}

/*
 * allow-peer: a list ( ... ) or array [ ... ] of identities, each checked
 * now (peerid.h), so a malformed one stops the load with its line. An
 * empty list is an error: read literally it refuses every peer, and it
 * is easily meant as "no restriction", which leaving the option out
 * says; either way a mistake to stop at.
 */
static int parse_peer_ids(const struct scope *s, int line, const char *name,
                          const config_setting_t *st, struct optset *o,
                          struct ss_errbuf *err)
{
    if (!config_setting_is_list(st) && !config_setting_is_array(st))
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "expected a list of identities ( \"CN=...\", "
                        "\"DNS:...\", ... )");
    int n = config_setting_length(st);
    if (n == 0)
        return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                        "must name at least one identity");
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(st, (unsigned)i);
        const char *v = config_setting_get_string(e);
        if (v == NULL || v[0] == '\0')
            return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                            "element %d: expected a non-empty string",
                            i + 1);
        char why[512];
        int rc = ss_peer_allow_add(&o->allow, v, why, sizeof(why));
        if (rc == SS_ERR_NOMEM)
            return nomem(err);
        if (rc < 0)
            return opt_fail(err, rc, s, line, name, "element %d: %s", i + 1,
                            why);
    }
    return SS_OK;
}

/* Type-checks st as option opt and stores its value in o. */
static int parse_value(const struct scope *s, const config_setting_t *st,
                       int opt, struct optset *o, struct ss_errbuf *err)
{
    const struct opt_spec *spec = &opt_specs[opt];
    int line = (int)config_setting_source_line(st);
    const char *str = config_setting_get_string(st);
    switch (spec->type) {
    case T_BOOL:
        if (config_setting_type(st) != CONFIG_TYPE_BOOL)
            return opt_fail(err, SS_ERR_CONFIG, s, line, spec->name,
                            "expected a boolean (true or false)");
        o->flag[opt] = config_setting_get_bool(st) != 0;
        return SS_OK;
    case T_SECONDS:
        return parse_seconds(s, line, spec->name, st, &o->seconds, err);
    case T_STRINGS:
        return parse_strings(s, line, spec->name, st, o, err);
    case T_PEER_IDS:
        return parse_peer_ids(s, line, spec->name, st, o, err);
    case T_STRING:
    case T_FILE:
    case T_FILES:
        if (str == NULL)
            return opt_fail(err, SS_ERR_CONFIG, s, line, spec->name,
                            "expected a string");
        SS_GUARD(check_string(s, line, opt, str, err));
        if (spec->type == T_STRING) {
            o->str[opt] = ss_strdup(str);
            return o->str[opt] != NULL ? SS_OK : nomem(err);
        }
        return parse_files(s, line, spec->name, str, spec->type == T_FILES,
                           &o->str[opt], err);
    default:
        return opt_fail(err, SS_ERR_CONFIG, s, line, spec->name,
                        "internal error: unhandled option type");
    }
}

/*
 * @include would put settings in other files, while the snapshot records
 * only line numbers of the policy file: refuse it rather than print wrong
 * locations.
 */
static int check_same_file(const char *path, const config_setting_t *st,
                           struct ss_errbuf *err)
{
    const char *file = config_setting_source_file(st);
    if (file == NULL || strcmp(file, path) == 0)
        return SS_OK;
    return file_fail(err, SS_ERR_CONFIG, file,
                     (int)config_setting_source_line(st),
                     "settings from @include files are not supported "
                     "(included by %s)", path);
}

/* Parses every member of group into o; in_defaults refuses per-endpoint
 * options. */
static int parse_group(const struct scope *s, const config_setting_t *group,
                       bool in_defaults, struct optset *o,
                       struct ss_errbuf *err)
{
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *st = config_setting_get_elem(group,
                                                             (unsigned)i);
        const char *name = config_setting_name(st);
        int line = (int)config_setting_source_line(st);
        SS_GUARD(check_same_file(s->path, st, err));
        int opt = opt_by_name(name);
        if (opt < 0)
            return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                            "unknown option");
        if (in_defaults && opt_specs[opt].per_endpoint)
            return opt_fail(err, SS_ERR_CONFIG, s, line, name,
                            "is per endpoint and cannot stand in defaults");
        if (o->line[opt] != 0)
            continue; /* name: already parsed first (see parse_endpoint) */
        SS_GUARD(parse_value(s, st, opt, o, err));
        o->line[opt] = line;
    }
    return SS_OK;
}

/* ------------------------------------------------------------------ */
/* Addresses: connect = "HOST:PORT", listen = "ADDR:PORT"               */

/* Digits only, in [lo, hi]. */
static bool parse_uint(const char *text, size_t len, unsigned long lo,
                       unsigned long hi, unsigned long *out)
{
    if (len == 0 || len > 6)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i]))
            return false;
        v = v * 10 + (unsigned long)(text[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Whether any bit of addr beyond the first prefix bits is set. */
static bool has_host_bits(const unsigned char *addr, size_t n_bytes,
                          unsigned prefix)
{
    for (size_t i = 0; i < n_bytes; i++) {
        unsigned first = (unsigned)i * 8;
        if (prefix >= first + 8)
            continue;
        unsigned kept = prefix > first ? prefix - first : 0;
        unsigned char keep = (unsigned char)(0xff00u >> kept);
        if (addr[i] & (unsigned char)~keep)
            return true;
    }
    return false;
}

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0,
                                                   0, 0, 0, 0, 0xff, 0xff};

/* [::ffff:a.b.c.d] (or a prefix inside ::ffff:0:0/96) is an IPv4 pattern,
 * so it matches however the program spells the destination. */
static void unmap_pattern(struct ss_host_pattern *m)
{
    if (m->family != AF_INET6 || m->prefix_len < 96 ||
        memcmp(m->addr, v4_mapped_prefix, 12) != 0)
        return;
    memmove(m->addr, m->addr + 12, 4);
    memset(m->addr + 4, 0, 12);
    m->family = AF_INET;
    m->prefix_len -= 96;
}

/*
 * The host part of an address: "*", an IPv4 address or prefix, "[IPv6]" or
 * "[IPv6]/N", or a DNS name. On failure writes the reason into why.
 */
static bool parse_host(const char *host, struct ss_host_pattern *m,
                       char *why, size_t why_len)
{
    if (strcmp(host, "*") == 0) {
        m->kind = SS_HOST_ANY;
        return true;
    }
    bool v6 = host[0] == '[';
    char text[256];
    const char *close = v6 ? strchr(host, ']') : NULL;
    const char *slash = strchr(v6 && close != NULL ? close : host, '/');
    if (v6 && (close == NULL || (close[1] != '\0' && close[1] != '/'))) {
        snprintf(why, why_len, "'%s': write an IPv6 address as [ADDR] or "
                 "[ADDR]/PREFIX", host);
        return false;
    }
    const char *start = v6 ? host + 1 : host;
    size_t len = v6 ? (size_t)(close - start)
                 : slash != NULL ? (size_t)(slash - host) : strlen(host);
    if (len >= sizeof(text)) {
        snprintf(why, why_len, "the host is too long");
        return false;
    }
    memcpy(text, start, len);
    text[len] = '\0';
    m->family = v6 ? AF_INET6 : AF_INET;
    unsigned max_prefix = v6 ? 128 : 32;
    if (inet_pton(m->family, text, m->addr) != 1) {
        if (!v6 && slash == NULL && !looks_numeric(text) &&
            valid_dns_name(text, len)) {
            m->kind = SS_HOST_NAME;
            for (size_t i = 0; i <= len; i++)
                m->name[i] = (char)tolower((unsigned char)text[i]);
            if (len > 0 && m->name[len - 1] == '.')
                m->name[len - 1] = '\0';
            return true;
        }
        snprintf(why, why_len, "'%s' is not %s", text,
                 v6 ? "an IPv6 address"
                 : slash != NULL || looks_numeric(text)
                     ? "an IPv4 address"
                     : "a valid host name, address or prefix");
        return false;
    }
    m->kind = SS_HOST_ADDR;
    m->prefix_len = max_prefix;
    if (slash != NULL) {
        unsigned long prefix;
        if (!parse_uint(slash + 1, strlen(slash + 1), 0, max_prefix,
                        &prefix)) {
            snprintf(why, why_len, "prefix length '%s' is not a number "
                     "from 0 to %u", slash + 1, max_prefix);
            return false;
        }
        if (has_host_bits(m->addr, max_prefix / 8, (unsigned)prefix)) {
            snprintf(why, why_len, "%s/%lu has bits set beyond the prefix",
                     text, prefix);
            return false;
        }
        m->kind = SS_HOST_CIDR;
        m->prefix_len = (unsigned)prefix;
    }
    unmap_pattern(m);
    return true;
}

static bool is_unspecified(const struct ss_host_pattern *m)
{
    static const unsigned char zero[16];
    size_t n = m->family == AF_INET ? 4 : 16;
    return m->kind == SS_HOST_ADDR && memcmp(m->addr, zero, n) == 0;
}

/*
 * A listen pattern: names are never resolved and prefixes make no sense
 * for a local address. The unspecified addresses are what a server binds
 * to listen everywhere; an accepted socket's local address is never one,
 * so they are widened: 0.0.0.0 to every IPv4 address, [::] (dual stack)
 * to every address.
 */
static bool check_listen_host(struct ss_host_pattern *m, char *why,
                              size_t why_len)
{
    if (m->kind == SS_HOST_NAME || m->kind == SS_HOST_CIDR) {
        snprintf(why, why_len, "a listen address must be *, an IPv4 "
                 "address or an [IPv6] address (%s)",
                 m->kind == SS_HOST_NAME ? "names are not resolved"
                                         : "not a prefix");
        return false;
    }
    if (!is_unspecified(m))
        return true;
    if (m->family == AF_INET6) {
        m->kind = SS_HOST_ANY;
        return true;
    }
    m->kind = SS_HOST_CIDR;
    m->prefix_len = 0;
    return true;
}

/* "HOST:PORT" into m. On failure writes the reason into why. */
static bool parse_address(const char *text, enum ss_direction dir,
                          struct ss_host_pattern *m, char *why,
                          size_t why_len)
{
    memset(m, 0, sizeof(*m));
    const char *close = text[0] == '[' ? strchr(text, ']') : NULL;
    const char *colon = strrchr(close != NULL ? close : text, ':');
    const char *form = dir == SS_DIR_CONNECT ? "HOST:PORT" : "ADDR:PORT";
    if (colon == NULL) {
        snprintf(why, why_len, "'%s' is not %s", text, form);
        return false;
    }
    unsigned long port;
    if (!parse_uint(colon + 1, strlen(colon + 1), 1, 65535, &port)) {
        snprintf(why, why_len, "port '%s' is not a number from 1 to 65535",
                 colon + 1);
        return false;
    }
    char host[300];
    size_t len = (size_t)(colon - text);
    if (len == 0 || len >= sizeof(host)) {
        snprintf(why, why_len, "'%s' is not %s (use * for any host)", text,
                 form);
        return false;
    }
    memcpy(host, text, len);
    host[len] = '\0';
    if (host[0] != '[' && strchr(host, ':') != NULL) {
        snprintf(why, why_len, "'%s': write an IPv6 address in brackets, "
                 "[ADDR]:PORT", text);
        return false;
    }
    m->port = (uint16_t)port;
    if (!parse_host(host, m, why, why_len))
        return false;
    return dir == SS_DIR_CONNECT || check_listen_host(m, why, why_len);
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */

static void endpoint_free(struct ss_endpoint *ep)
{
    if (ep->tls != NULL)
        ss_tlsctx_free(ep->tls);
    free(ep->name);
    free(ep->address);
    free(ep->certificate);
    free(ep->certificate_key);
    free(ep->trusted_ca);
    free(ep->tls_crl);
    free(ep->target_name);
    free(ep->cipher_list);
    free(ep->cipher_suites);
    ss_peer_allow_free(&ep->allow_peer);
    memset(ep, 0, sizeof(*ep));
}

/* Moves a string out of the optset into the endpoint. */
static char *take(struct optset *o, int opt)
{
    char *v = o->str[opt];
    o->str[opt] = NULL;
    return v;
}

/* connect or listen, exactly one, parsed into ep. */
static int build_address(const char *path, struct ss_endpoint *ep,
                         struct optset *o, struct ss_errbuf *err)
{
    bool has_connect = o->line[SS_OPT_CONNECT] != 0;
    bool has_listen = o->line[SS_OPT_LISTEN] != 0;
    if (has_connect && has_listen)
        return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep,
                                o->line[SS_OPT_LISTEN] >=
                                        o->line[SS_OPT_CONNECT]
                                    ? SS_OPT_LISTEN
                                    : SS_OPT_CONNECT,
                                "connect and listen are mutually exclusive "
                                "(one endpoint per direction)");
    if (!has_connect && !has_listen)
        return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep,
                                SS_OPT_CONNECT,
                                "one of connect or listen is required");
    enum ss_opt opt = has_connect ? SS_OPT_CONNECT : SS_OPT_LISTEN;
    ep->direction = has_connect ? SS_DIR_CONNECT : SS_DIR_LISTEN;
    char why[512];
    if (!parse_address(o->str[opt], ep->direction, &ep->match, why,
                       sizeof(why)))
        return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep, opt, "%s",
                                why);
    ep->address = take(o, opt);
    return SS_OK;
}

/* The rules that involve more than one option. */
static int check_cross_rules(const char *path, const struct ss_endpoint *ep,
                             struct ss_errbuf *err)
{
    bool listen = ep->direction == SS_DIR_LISTEN;
    if (ep->certificate != NULL && ep->certificate_key == NULL)
        return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep,
                                SS_OPT_CERTIFICATE,
                                "is set but certificate-key is not");
    if (ep->certificate_key != NULL && ep->certificate == NULL)
        return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep,
                                SS_OPT_CERTIFICATE_KEY,
                                "is set but certificate is not");
    if (listen && ep->certificate == NULL)
        return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep,
                                SS_OPT_CERTIFICATE,
                                "a listen endpoint needs certificate and "
                                "certificate-key");
    if (listen && ep->tls_mutual && ep->trusted_ca == NULL)
        return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep,
                                SS_OPT_TLS_MUTUAL,
                                "a mutual listen endpoint needs trusted-ca "
                                "to verify client certificates");
    if (!listen && ep->tls_mutual && ep->certificate == NULL)
        return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep,
                                SS_OPT_TLS_MUTUAL,
                                "a mutual connect endpoint needs certificate "
                                "and certificate-key to present");
    /* A listen endpoint verifies a client certificate only with
     * tls-mutual: without it there is nothing to check, and allow-peer
     * must never pass a peer unchecked (fail closed). */
    if (listen && ep->allow_peer.n > 0 && !ep->tls_mutual)
        return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep,
                                SS_OPT_ALLOW_PEER,
                                "needs a verified client certificate, and a "
                                "listen endpoint verifies one only with "
                                "tls-mutual: set tls-mutual = true");
    return SS_OK;
}

/* Turns a merged optset into ep (taking its strings) and validates it. */
static int build_endpoint(const struct scope *s, struct optset *o, int line,
                          struct ss_endpoint *ep, struct ss_errbuf *err)
{
    memcpy(ep->opt_line, o->line, sizeof(ep->opt_line));
    ep->line = line;
    ep->name = take(o, SS_OPT_NAME);
    ep->enabled = o->line[SS_OPT_ENABLED] ? o->flag[SS_OPT_ENABLED] : true;
    SS_GUARD(build_address(s->path, ep, o, err));
    ep->certificate = take(o, SS_OPT_CERTIFICATE);
    ep->certificate_key = take(o, SS_OPT_CERTIFICATE_KEY);
    ep->trusted_ca = take(o, SS_OPT_TRUSTED_CA);
    ep->tls_crl = take(o, SS_OPT_TLS_CRL);
    ep->tls_mutual = o->flag[SS_OPT_TLS_MUTUAL];
    ep->target_name_check = o->str[SS_OPT_TARGET_NAME_CHECK] == NULL ||
                            strcmp(o->str[SS_OPT_TARGET_NAME_CHECK], "no") != 0;
    ep->target_name = take(o, SS_OPT_TARGET_NAME);
    ep->cipher_list = take(o, SS_OPT_CIPHER_LIST);
    ep->cipher_suites = take(o, SS_OPT_CIPHER_SUITES);
    ep->handshake_timeout_ms =
        (o->line[SS_OPT_HANDSHAKE_TIMEOUT] ? o->seconds
                                           : SS_DEFAULT_HANDSHAKE_TIMEOUT_S) *
        1000;
    ep->fips140_enabled = o->flag[SS_OPT_FIPS140_ENABLED];
    /* The secure choice is the default: only "eof" relaxes it. */
    ep->unexpected_eof_is_eof =
        o->str[SS_OPT_TLS_UNEXPECTED_EOF] != NULL &&
        strcmp(o->str[SS_OPT_TLS_UNEXPECTED_EOF], "eof") == 0;
    ep->session_resumption = o->line[SS_OPT_SESSION_RESUMPTION]
                                 ? o->flag[SS_OPT_SESSION_RESUMPTION]
                                 : true;
    ep->allow_peer = o->allow;
    memset(&o->allow, 0, sizeof(o->allow));
    /* The secure choice is the default: only an explicit false relaxes. */
    ep->x509_strict = o->line[SS_OPT_X509_STRICT]
                          ? o->flag[SS_OPT_X509_STRICT]
                          : true;
    SS_GUARD(resolve_protocol(o, s, &ep->proto, err));
    return check_cross_rules(s->path, ep, err);
}

/* Parses endpoint number index (1-based) over defs into ep. */
static int parse_endpoint(const char *path, const config_setting_t *group,
                          size_t index, const struct optset *defs,
                          struct ss_endpoint *ep, struct ss_errbuf *err)
{
    struct scope s;
    int line = (int)config_setting_source_line(group);
    scope_set(&s, path, "endpoint #%zu", index);
    SS_GUARD(check_same_file(path, group, err));
    if (!config_setting_is_group(group))
        return opt_fail(err, SS_ERR_CONFIG, &s, line, NULL,
                        "expected a group { ... }");
    struct optset o;
    memset(&o, 0, sizeof(o));
    /* The name first, so every later message can say which endpoint. */
    const config_setting_t *name = config_setting_get_member(group, "name");
    int rc = name != NULL ? parse_value(&s, name, SS_OPT_NAME, &o, err)
                          : opt_fail(err, SS_ERR_CONFIG, &s, line, "name",
                                     "is required");
    if (rc >= 0) {
        o.line[SS_OPT_NAME] = (int)config_setting_source_line(name);
        scope_set(&s, path, "endpoint '%s'", o.str[SS_OPT_NAME]);
        rc = parse_group(&s, group, false, &o, err);
    }
    if (rc >= 0)
        rc = optset_inherit(&o, defs) < 0 ? nomem(err) : SS_OK;
    if (rc >= 0)
        rc = build_endpoint(&s, &o, line, ep, err);
    optset_free(&o);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The file                                                            */

static void policy_free(struct ss_policy *p)
{
    for (size_t i = 0; i < p->n_endpoints; i++)
        endpoint_free(&p->endpoints[i]);
    free(p->endpoints);
    free(p->path);
    free(p->log_file);
    free(p);
}

/* Opens and parses path: SS_ERR_IO when unreadable, SS_ERR_CONFIG with
 * libconfig's own message on a syntax error. */
static int read_config(const char *path, config_t *cfg, struct ss_errbuf *err)
{
    int e = readable_errno(path);
    if (e != 0)
        return ss_fail(err, SS_ERR_IO, "%s: cannot read: %s", path,
                       strerror(e));
    if (config_read_file(cfg, path) == CONFIG_TRUE)
        return SS_OK;
    if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
        return ss_fail(err, SS_ERR_IO, "%s: cannot read: %s", path,
                       errno != 0 ? strerror(errno) : "I/O error");
    const char *file = config_error_file(cfg);
    return file_fail(err, SS_ERR_CONFIG, file != NULL ? file : path,
                     config_error_line(cfg), "%s", config_error_text(cfg));
}

/* version = 1; is required and comes first in meaning, if not in place. */
static int check_version(const char *path, const config_t *cfg,
                         struct ss_errbuf *err)
{
    const config_setting_t *v = config_lookup(cfg, "version");
    if (v == NULL)
        return file_fail(err, SS_ERR_CONFIG, path, 0,
                         "setting 'version' is missing (write version = "
                         "%d; at the top)", POLICY_VERSION);
    int line = (int)config_setting_source_line(v);
    if (!is_int(v))
        return file_fail(err, SS_ERR_CONFIG, path, line,
                         "setting 'version': expected an integer");
    long long n = config_setting_get_int64(v);
    if (n != POLICY_VERSION)
        return file_fail(err, SS_ERR_CONFIG, path, line,
                         "setting 'version': version %lld is not supported "
                         "(this secshim reads version %d)", n,
                         POLICY_VERSION);
    return SS_OK;
}

/* log = { level = "..."; file = "..."; }; */
static int parse_log(const char *path, const config_setting_t *log,
                     struct ss_policy *p, struct ss_errbuf *err)
{
    struct scope s;
    scope_set(&s, path, "log");
    if (!config_setting_is_group(log))
        return opt_fail(err, SS_ERR_CONFIG, &s,
                        (int)config_setting_source_line(log), NULL,
                        "expected a group { level = ...; file = ...; }");
    int n = config_setting_length(log);
    for (int i = 0; i < n; i++) {
        const config_setting_t *st = config_setting_get_elem(log, (unsigned)i);
        const char *name = config_setting_name(st);
        const char *value = config_setting_get_string(st);
        int line = (int)config_setting_source_line(st);
        SS_GUARD(check_same_file(path, st, err));
        bool is_level = strcmp(name, "level") == 0;
        if (!is_level && strcmp(name, "file") != 0)
            return opt_fail(err, SS_ERR_CONFIG, &s, line, name,
                            "unknown option (expected level or file)");
        if (value == NULL || value[0] == '\0')
            return opt_fail(err, SS_ERR_CONFIG, &s, line, name,
                            "expected a non-empty string");
        if (is_level && ss_log_level_parse(value, &p->log_level) != SS_OK)
            return opt_fail(err, SS_ERR_CONFIG, &s, line, name,
                            "'%s' is not one of error, warning, info, debug",
                            value);
        if (is_level)
            continue;
        free(p->log_file);
        bool special = strcmp(value, "stderr") == 0 ||
                       strcmp(value, "syslog") == 0;
        p->log_file = special ? ss_strdup(value)
                              : resolve_path(path, value, strlen(value));
        if (p->log_file == NULL)
            return nomem(err);
    }
    return SS_OK;
}

/* defaults = { ... }; every value checked on its own. */
static int parse_defaults(const char *path, const config_setting_t *group,
                          struct optset *defs, struct ss_errbuf *err)
{
    struct scope s;
    scope_set(&s, path, "defaults");
    if (!config_setting_is_group(group))
        return opt_fail(err, SS_ERR_CONFIG, &s,
                        (int)config_setting_source_line(group), NULL,
                        "expected a group { ... }");
    SS_GUARD(parse_group(&s, group, true, defs, err));
    /* Protocol settings are checked here too, so an invalid one in
     * defaults is reported even when every endpoint overrides it. */
    struct ss_proto unused;
    return resolve_protocol(defs, &s, &unused, err);
}

/* The first endpoint named like ep before it, or NULL. */
static const struct ss_endpoint *find_name(const struct ss_policy *p,
                                           const struct ss_endpoint *ep)
{
    for (const struct ss_endpoint *e = p->endpoints; e < ep; e++)
        if (strcmp(e->name, ep->name) == 0)
            return e;
    return NULL;
}

/* endpoints = ( { ... }, ... ); */
static int parse_endpoints(const char *path, const config_setting_t *list,
                           const struct optset *defs, struct ss_policy *p,
                           struct ss_errbuf *err)
{
    int line = (int)config_setting_source_line(list);
    if (!config_setting_is_list(list))
        return file_fail(err, SS_ERR_CONFIG, path, line,
                         "setting 'endpoints': expected a list ( { ... }, "
                         "... )");
    size_t n = (size_t)config_setting_length(list);
    if (n == 0)
        return SS_OK;
    p->endpoints = ss_calloc(n, sizeof(*p->endpoints));
    if (p->endpoints == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        struct ss_endpoint *ep = &p->endpoints[i];
        /* Counted before parsing so a half-built endpoint is freed too. */
        p->n_endpoints = i + 1;
        SS_GUARD(parse_endpoint(path,
                                config_setting_get_elem(list, (unsigned)i),
                                i + 1, defs, ep, err));
        const struct ss_endpoint *first = find_name(p, ep);
        if (first != NULL)
            return ss_endpoint_fail(err, SS_ERR_CONFIG, path, ep,
                                    SS_OPT_NAME,
                                    "duplicate name (first used at line %d)",
                                    first->opt_line[SS_OPT_NAME]);
    }
    return SS_OK;
}

/* Refuses top-level settings other than the four known ones. */
static int check_top_level(const char *path, const config_t *cfg,
                           struct ss_errbuf *err)
{
    static const char *const known[] = {"version", "log", "defaults",
                                        "endpoints"};
    const config_setting_t *root = config_root_setting(cfg);
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *st = config_setting_get_elem(root,
                                                             (unsigned)i);
        const char *name = config_setting_name(st);
        SS_GUARD(check_same_file(path, st, err));
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok = ok || strcmp(name, known[k]) == 0;
        if (!ok)
            return file_fail(err, SS_ERR_CONFIG, path,
                             (int)config_setting_source_line(st),
                             "unknown setting '%s' (expected version, log, "
                             "defaults, endpoints)", name);
    }
    return SS_OK;
}

/* Pass 1 and 2: the whole file into p, without TLS contexts. */
static int parse_policy(const char *path, const config_t *cfg,
                        struct ss_policy *p, struct ss_errbuf *err)
{
    SS_GUARD(check_version(path, cfg, err));
    SS_GUARD(check_top_level(path, cfg, err));
    const config_setting_t *log = config_lookup(cfg, "log");
    if (log != NULL)
        SS_GUARD(parse_log(path, log, p, err));
    const config_setting_t *endpoints = config_lookup(cfg, "endpoints");
    if (endpoints == NULL)
        return file_fail(err, SS_ERR_CONFIG, path, 0,
                         "setting 'endpoints' is missing (write endpoints "
                         "= ( ... ); even when empty)");
    struct optset defs;
    memset(&defs, 0, sizeof(defs));
    const config_setting_t *group = config_lookup(cfg, "defaults");
    int rc = group != NULL ? parse_defaults(path, group, &defs, err) : SS_OK;
    if (rc >= 0)
        rc = parse_endpoints(path, endpoints, &defs, p, err);
    optset_free(&defs);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Pass 3: TLS contexts                                                */

/*
 * Serialises the building of contexts, so that each is built once per
 * endpoint per snapshot however many threads want it at once. Held across
 * a build (reading certificate files, OpenSSL), during which only the
 * log lock is taken (tlsctx logs warnings); never taken while a shim lock
 * is held. fork: ss_policy_fork_*.
 */
static pthread_mutex_t build_lock = PTHREAD_MUTEX_INITIALIZER;

struct ss_tlsctx *ss_endpoint_tls(const struct ss_endpoint *ep)
{
    /* acquire: pairs with the release in build_locked, so the context is
     * seen whole. */
    return atomic_load_explicit(&ep->tls, memory_order_acquire);
}

/* The failure a later caller gets: the first one was reported already. */
static int remembered_failure(const char *path, const struct ss_endpoint *ep,
                              int code, struct ss_errbuf *err)
{
    return ss_fail(err, code, "%s:%d: endpoint '%s': its TLS context could "
                   "not be built (%s, reported at its first use); tried "
                   "again when the policy or its files change", path,
                   ep->line, ep->name, ss_strerror(code));
}

/*
 * ep's context, built now when it has none and no earlier build failed.
 * Called with build_lock held. *tried: this call ran the build. tlsctx
 * reports its own errors with ss_endpoint_fail; they are passed on
 * unchanged. Out of memory is not remembered: it may pass.
 */
static int build_locked(const struct ss_policy *p, struct ss_endpoint *ep,
                        bool *tried, struct ss_errbuf *err)
{
    *tried = false;
    if (atomic_load_explicit(&ep->tls, memory_order_relaxed) != NULL)
        return SS_OK;
    int known = atomic_load_explicit(&ep->tls_error, memory_order_relaxed);
    if (known < 0)
        return remembered_failure(p->path, ep, known, err);
    *tried = true;
    struct ss_tlsctx *t = NULL;
    int rc = ss_tlsctx_new(p->path, ep, p->compat, &t, err);
    /* Once more before the failure is remembered: an allocation that
     * failed inside OpenSSL does not always say so (a key that does not
     * decode, "ee key too small"), and a failure the files cause fails
     * again (docs/design.md, "Allocation failure"). The first attempt's
     * words are the ones kept: a second attempt can fail differently (a
     * FIPS provider whose first load failed is in its error state). */
    if (rc < 0 && rc != SS_ERR_NOMEM) {
        struct ss_errbuf first = {""};
        if (err != NULL)
            first = *err;
        int again = ss_tlsctx_new(p->path, ep, p->compat, &t, err);
        if (again == SS_ERR_NOMEM || again >= 0)
            rc = again;
        else if (err != NULL)
            *err = first;
    }
    if (rc == SS_ERR_NOMEM)
        return rc;
    if (rc < 0) {
        atomic_store_explicit(&ep->tls_error, rc, memory_order_release);
        return rc;
    }
    /* Published only once complete ("build completely, then publish"). */
    atomic_store_explicit(&ep->tls, t, memory_order_release);
    return SS_OK;
}

/* The snapshot's own (writable) copy of ep, or NULL when ep is not one of
 * p's enabled endpoints. */
static struct ss_endpoint *own_endpoint(struct ss_policy *p,
                                        const struct ss_endpoint *ep)
{
    for (size_t i = 0; i < p->n_endpoints; i++)
        if (&p->endpoints[i] == ep)
            return p->endpoints[i].enabled ? &p->endpoints[i] : NULL;
    return NULL;
}

int ss_policy_tls(struct ss_policy *p, const struct ss_endpoint *ep,
                  bool *built_here, struct ss_errbuf *err)
{
    *built_here = false;
    if (ep != NULL && ss_endpoint_tls(ep) != NULL)
        return SS_OK; /* the fast path: built already */
    struct ss_endpoint *own = p != NULL ? own_endpoint(p, ep) : NULL;
    if (own == NULL)
        return ss_fail(err, SS_ERR_INVAL, "ss_policy_tls: not an enabled "
                                          "endpoint of this policy");
    int known = atomic_load_explicit(&own->tls_error, memory_order_acquire);
    if (known < 0)
        return remembered_failure(p->path, own, known, err);
    pthread_mutex_lock(&build_lock);
    int rc = build_locked(p, own, built_here, err);
    pthread_mutex_unlock(&build_lock);
    return rc;
}

/* Locks around one build (for the callers that build several). */
static int build_one(struct ss_policy *p, struct ss_endpoint *ep,
                     struct ss_errbuf *err)
{
    bool tried;
    pthread_mutex_lock(&build_lock);
    int rc = build_locked(p, ep, &tried, err);
    pthread_mutex_unlock(&build_lock);
    return rc;
}

int ss_policy_build_all(struct ss_policy *p, struct ss_errbuf *err)
{
    for (size_t i = 0; i < p->n_endpoints; i++)
        if (p->endpoints[i].enabled)
            SS_GUARD(build_one(p, &p->endpoints[i], err));
    return SS_OK;
}

/* The enabled endpoint of p named name, or NULL. */
static struct ss_endpoint *enabled_named(struct ss_policy *p,
                                         const char *name)
{
    for (size_t i = 0; i < p->n_endpoints; i++)
        if (p->endpoints[i].enabled &&
            strcmp(p->endpoints[i].name, name) == 0)
            return &p->endpoints[i];
    return NULL;
}

int ss_policy_build_used(struct ss_policy *fresh,
                         const struct ss_policy *old, struct ss_errbuf *err)
{
    for (size_t i = 0; old != NULL && i < old->n_endpoints; i++) {
        const struct ss_endpoint *used = &old->endpoints[i];
        struct ss_endpoint *ep = ss_endpoint_tls(used) != NULL
                                     ? enabled_named(fresh, used->name)
                                     : NULL;
        if (ep != NULL)
            SS_GUARD(build_one(fresh, ep, err));
    }
    return SS_OK;
}

/* No build is under way at fork (prepare waits for it), so the child's
 * lock is free and its contexts are whole. */
void ss_policy_fork_prepare(void)
{
    pthread_mutex_lock(&build_lock);
}

void ss_policy_fork_parent(void)
{
    pthread_mutex_unlock(&build_lock);
}

void ss_policy_fork_child(void)
{
    pthread_mutex_unlock(&build_lock); /* taken by this thread in prepare */
}

/*
 * path made absolute against the working directory at load time, so the
 * relative file names inside keep pointing at the same files when the
 * program changes directory before a reload. Symbolic links are kept.
 * Returns a new string, or NULL when out of memory or the working
 * directory is unknown.
 */
static char *absolute_path(const char *path)
{
    if (path[0] == '/')
        return ss_strdup(path);
    /* getcwd into our own buffer, grown until it fits, rather than
     * getcwd(NULL, 0): every allocation of the engine goes through
     * alloc.h (a test fails each in turn). */
    size_t path_len = strlen(path);
    for (size_t size = 256; size <= 64 * 1024; size *= 2) {
        char *abs = ss_malloc(size + 1 + path_len + 1);
        if (abs == NULL)
            return NULL;
        if (getcwd(abs, size) != NULL) {
            size_t cwd_len = strlen(abs);
            abs[cwd_len] = '/';
            memcpy(abs + cwd_len + 1, path, path_len + 1);
            return abs;
        }
        free(abs);
        if (errno != ERANGE)
            return NULL;
    }
    return NULL;
}

static struct ss_policy *policy_new(const char *path, bool compat)
{
    struct ss_policy *p = ss_calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    atomic_init(&p->refs, 1);
    p->compat = compat;
    p->log_level = SS_LOG_WARNING;
    p->path = absolute_path(path);
    p->log_file = ss_strdup("stderr");
    if (p->path == NULL || p->log_file == NULL) {
        policy_free(p);
        return NULL;
    }
    return p;
}

int ss_policy_parse(const char *path, bool compat, struct ss_policy **out,
                    struct ss_errbuf *err)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL)
        return ss_fail(err, SS_ERR_INVAL, "ss_policy_parse: no path or out");
    struct ss_policy *p = policy_new(path, compat);
    if (p == NULL)
        return nomem(err);
    config_t cfg;
    config_init(&cfg);
    int rc = read_config(p->path, &cfg, err);
    if (rc >= 0)
        rc = parse_policy(p->path, &cfg, p, err);
    config_destroy(&cfg);
    if (rc < 0) {
        policy_free(p);
        return rc;
    }
    *out = p;
    return SS_OK;
}

int ss_policy_load(const char *path, bool compat, struct ss_policy **out,
                   struct ss_errbuf *err)
{
    if (out == NULL)
        return ss_fail(err, SS_ERR_INVAL, "ss_policy_load: no out");
    *out = NULL;
    struct ss_policy *p = NULL;
    SS_GUARD(ss_policy_parse(path, compat, &p, err));
    int rc = ss_policy_build_all(p, err);
    if (rc < 0) {
        policy_free(p);
        return rc;
    }
    *out = p;
    return SS_OK;
}

void ss_policy_ref(struct ss_policy *p)
{
    /* Taking a reference needs no ordering: the caller already holds one. */
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void ss_policy_unref(struct ss_policy *p)
{
    if (p == NULL)
        return;
    /* acq_rel: every use by other holders happens before the free. */
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        policy_free(p);
}

/* ------------------------------------------------------------------ */
/* Matching                                                            */

/* sa as family/bytes/port; IPv4-mapped IPv6 becomes IPv4 (see policy.h). */
bool ss_net_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len,
                               struct ss_net_addr *out)
{
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return false;
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET &&
        len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        out->family = AF_INET;
        memcpy(out->bytes, &in.sin_addr, 4);
        out->port = ntohs(in.sin_port);
        return true;
    }
    if (sa->sa_family != AF_INET6 ||
        len < (socklen_t)sizeof(struct sockaddr_in6))
        return false;
    struct sockaddr_in6 in6;
    memcpy(&in6, sa, sizeof(in6));
    out->port = ntohs(in6.sin6_port);
    bool mapped = memcmp(&in6.sin6_addr, v4_mapped_prefix, 12) == 0;
    out->family = mapped ? AF_INET : AF_INET6;
    const unsigned char *bytes = (const unsigned char *)&in6.sin6_addr;
    memcpy(out->bytes, mapped ? bytes + 12 : bytes, mapped ? 4 : 16);
    return true;
}

bool ss_net_addr_equal(const struct ss_net_addr *a,
                       const struct ss_net_addr *b)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    return a->family == b->family && memcmp(a->bytes, b->bytes, n) == 0;
}

/* Whether the first prefix bits of a and b are equal. */
static bool prefix_equal(const unsigned char *a, const unsigned char *b,
                         unsigned prefix)
{
    size_t whole = prefix / 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    unsigned rest = prefix % 8;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static bool addr_matches(const struct ss_host_pattern *m,
                         const struct ss_net_addr *a)
{
    if (m->family == a->family)
        return prefix_equal(m->addr, a->bytes, m->prefix_len);
    /* An IPv6 prefix that covers ::ffff:0:0/96 also covers the IPv4
     * addresses a dual-stack socket reports in mapped form. */
    if (m->family != AF_INET6 || a->family != AF_INET)
        return false;
    unsigned char mapped[16];
    memcpy(mapped, v4_mapped_prefix, 12);
    memcpy(mapped + 12, a->bytes, 4);
    return prefix_equal(m->addr, mapped, m->prefix_len);
}

bool ss_host_pattern_has_addr(const struct ss_host_pattern *m,
                              const struct ss_net_addr *a)
{
    switch (m->kind) {
    case SS_HOST_ANY:
        return true;
    case SS_HOST_ADDR:
    case SS_HOST_CIDR:
        return addr_matches(m, a);
    case SS_HOST_NAME:
    default:
        return false;
    }
}

bool ss_host_name_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* Whether some enabled endpoint of direction dir uses port: when none
 * does, no endpoint can make the connection TLS, and nothing needs to be
 * looked up to know it. */
static bool port_wanted(const struct ss_policy *p, enum ss_direction dir,
                        uint16_t port)
{
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct ss_endpoint *ep = &p->endpoints[i];
        if (ep->direction == dir && ep->enabled && ep->match.port == port)
            return true;
    }
    return false;
}

/* The first endpoint of direction dir that matches, NULL when none does
 * or when the first match is disabled. Names are asked of in_set. */
static const struct ss_endpoint *first_match(const struct ss_policy *p,
                                             enum ss_direction dir,
                                             const struct sockaddr *sa,
                                             socklen_t len,
                                             ss_name_has_addr_fn in_set,
                                             void *arg)
{
    struct ss_net_addr a;
    if (p == NULL || !ss_net_addr_from_sockaddr(sa, len, &a) ||
        !port_wanted(p, dir, a.port))
        return NULL;
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct ss_endpoint *ep = &p->endpoints[i];
        if (ep->direction != dir || ep->match.port != a.port)
            continue;
        bool hit = ep->match.kind == SS_HOST_NAME
                       ? in_set != NULL && in_set(ep, &a, arg)
                       : ss_host_pattern_has_addr(&ep->match, &a);
        if (hit)
            return ep->enabled ? ep : NULL;
    }
    return NULL;
}

const struct ss_endpoint *ss_policy_match_connect(const struct ss_policy *p,
                                                  const struct sockaddr *addr,
                                                  socklen_t addr_len,
                                                  ss_name_has_addr_fn in_set,
                                                  void *arg)
{
    return first_match(p, SS_DIR_CONNECT, addr, addr_len, in_set, arg);
}

/* docs/design.md, "Endpoints and matching": a name that cannot be
 * resolved fails closed. An enabled endpoint takes the destination, so
 * the connection is TLS and the peer must prove the endpoint's name; a
 * disabled one does not (taking it would make destinations of later TLS
 * endpoints plaintext). */
bool ss_endpoint_unresolved_matches(const struct ss_endpoint *ep)
{
    return ep != NULL && ep->enabled;
}

/* The address of a as text (IPv4 for a mapped one); "?" when it has none. */
static void net_addr_text(const struct ss_net_addr *a, char *out, size_t len)
{
    if (inet_ntop(a->family, a->bytes, out, (socklen_t)len) == NULL)
        snprintf(out, len, "?");
}

enum ss_tls_name_source ss_endpoint_tls_name(const struct ss_endpoint *ep,
                                             const char *resolved,
                                             const struct ss_net_addr *a,
                                             char *host, size_t len)
{
    if (ep->target_name != NULL) {
        snprintf(host, len, "%s", ep->target_name);
        return SS_NAME_TARGET;
    }
    if (ep->match.kind == SS_HOST_NAME) {
        snprintf(host, len, "%s", ep->match.name);
        return SS_NAME_ENDPOINT;
    }
    if (resolved != NULL && resolved[0] != '\0') {
        snprintf(host, len, "%s", resolved);
        return SS_NAME_RESOLVED;
    }
    net_addr_text(a, host, len);
    return SS_NAME_ADDRESS;
}

const struct ss_endpoint *ss_policy_match_listen(const struct ss_policy *p,
                                                 const struct sockaddr *addr,
                                                 socklen_t addr_len)
{
    /* Listen patterns are never names (check_listen_host refuses them). */
    return first_match(p, SS_DIR_LISTEN, addr, addr_len, NULL, NULL);
}

/* Whether pattern m can match some address of family (after IPv4-mapped
 * addresses are taken as IPv4, as matching does). Listen patterns are *,
 * addresses, and the widened 0.0.0.0 (an IPv4 prefix). */
static bool pattern_in_family(const struct ss_host_pattern *m, int family)
{
    return m->kind == SS_HOST_ANY || m->family == family;
}

bool ss_policy_listen_serves(const struct ss_policy *p,
                             const struct ss_endpoint *ep,
                             const struct sockaddr *addr, socklen_t addr_len,
                             bool v6only)
{
    struct ss_net_addr a;
    if (p == NULL || ep == NULL || !ep->enabled ||
        ep->direction != SS_DIR_LISTEN ||
        !ss_net_addr_from_sockaddr(addr, addr_len, &a) ||
        ep->match.port != a.port)
        return false;
    static const unsigned char zero[16];
    bool unspecified = memcmp(a.bytes, zero, a.family == AF_INET ? 4 : 16)
                       == 0;
    if (!unspecified)
        return ss_policy_match_listen(p, addr, addr_len) == ep;
    /* 0.0.0.0 accepts on every IPv4 address; [::] on every IPv6 one, and
     * on every IPv4 one too unless v6only. */
    if (a.family == AF_INET)
        return pattern_in_family(&ep->match, AF_INET);
    return pattern_in_family(&ep->match, AF_INET6) ||
           (!v6only && pattern_in_family(&ep->match, AF_INET));
}
