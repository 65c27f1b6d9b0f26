/*
 * session.c - TLS session resumption (see session.h; docs/protocols.md,
 * "Sessions", for the behaviour and docs/design.md, "Session resumption",
 * for the why).
 *
 * Three parts:
 *   the client cache   a hash table of (endpoint, host) -> newest session,
 *                      threaded on an LRU list, bounded, under cache_lock;
 *   the ticket keys    per (endpoint, trust digest), a ratchet of hourly
 *                      keys, in a registry under ticket_lock;
 *   the callbacks      OpenSSL's new-session (client), ticket key, ticket
 *                      generate / decrypt (server) callbacks that tie the
 *                      two to a connection through its ss_session_link.
 * Nothing here logs, and no OpenSSL call that could call back into this
 * file is made with a lock held.
 */
#include "secshim/session.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "secshim/alloc.h"

/* Twice the bound, a power of two: chains stay short. */
#define CACHE_BUCKETS 2048

/* ---- ex_data indexes -------------------------------------------------- */

static pthread_once_t index_once = PTHREAD_ONCE_INIT;
static int link_index = -1;   /* SSL -> const struct ss_session_link */
static int keys_index = -1;   /* SSL_CTX -> struct ss_ticket_keys */

static void index_alloc(void)
{
    link_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static bool index_ready(void)
{
    pthread_once(&index_once, index_alloc);
    return link_index >= 0 && keys_index >= 0;
}

/* ---- verdicts ----------------------------------------------------------- */

/*
 * A verdict travels in the session's ticket application data: on a
 * server it is sealed into the ticket with the session, on a client it is
 * a field of the cached session (OpenSSL copies it into the session that
 * a new ticket makes). Layout: tag, flags (bit 0: ok), relaxations, the
 * verification time as 8 bytes big-endian.
 */
#define VERDICT_TAG 'S'
#define VERDICT_LEN 11

int ss_session_set_verdict(SSL_SESSION *sess,
                           const struct ss_verify_result *res, time_t at)
{
    unsigned char v[VERDICT_LEN];
    v[0] = VERDICT_TAG;
    v[1] = res != NULL && res->ok ? 1 : 0;
    v[2] = res != NULL ? (unsigned char)res->relaxations : 0;
    uint64_t t = (uint64_t)at;
    for (int i = 0; i < 8; i++)
        v[3 + i] = (unsigned char)(t >> (56 - 8 * i));
    return SSL_SESSION_set1_ticket_appdata(sess, v, sizeof(v)) == 1
               ? SS_OK
               : SS_ERR_NOMEM;
}

bool ss_session_get_verdict(SSL_SESSION *sess, struct ss_session_verdict *out)
{
    void *data = NULL;
    size_t len = 0;
    if (sess == NULL ||
        SSL_SESSION_get0_ticket_appdata(sess, &data, &len) != 1 ||
        len != VERDICT_LEN || ((unsigned char *)data)[0] != VERDICT_TAG)
        return false;
    const unsigned char *v = data;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = (t << 8) | v[3 + i];
    out->ok = (v[1] & 1) != 0;
    out->relaxations = v[2];
    out->verified_at = (time_t)t;
    return true;
}

/* The peer certificate's notAfter as a time_t; false without one. */
static bool peer_not_after(SSL_SESSION *sess, time_t *out)
{
    X509 *peer = SSL_SESSION_get0_peer(sess);
    struct tm tm;
    if (peer == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(peer), &tm) != 1)
        return false;
    *out = timegm(&tm);
    return true;
}

time_t ss_session_trusted_until(SSL_SESSION *sess)
{
    struct ss_session_verdict v;
    if (!ss_session_get_verdict(sess, &v))
        return 0;
    time_t end = v.verified_at + SS_SESSION_REVERIFY_S;
    time_t not_after;
    if (peer_not_after(sess, &not_after) && not_after < end)
        end = not_after;
    return end;
}

/* When a client may no longer offer sess: its timeout, the lifetime its
 * ticket was given, or the end of its verdict, whichever comes first. */
static time_t session_expiry(SSL_SESSION *sess)
{
    time_t made = (time_t)SSL_SESSION_get_time(sess);
    time_t end = made + (time_t)SSL_SESSION_get_timeout(sess);
    unsigned long hint = SSL_SESSION_get_ticket_lifetime_hint(sess);
    if (SSL_SESSION_has_ticket(sess) && hint > 0 &&
        made + (time_t)hint < end)
        end = made + (time_t)hint;
    time_t trusted = ss_session_trusted_until(sess);
    return trusted < end ? trusted : end;
}

/* ---- the client cache ------------------------------------------------------ */

struct entry {
    struct entry *chain;             /* next in the bucket */
    struct entry *newer, *older;     /* the LRU list */
    uint64_t hash;
    SSL_SESSION *sess;               /* one reference */
    time_t expires;
    unsigned char digest[SS_TRUST_DIGEST_LEN];
    const char *host;                /* into key[] */
    char key[];                      /* endpoint '\0' host '\0' */
};

/*
 * Guards buckets, the LRU list and count. A leaf: taken under a shim
 * socket's lock (handshakes, tickets arriving on reads), and nothing is
 * taken while holding it; sessions dropped are freed after unlocking.
 */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *buckets[CACHE_BUCKETS];
static struct entry *newest, *oldest;
static size_t count;

static uint64_t key_hash(const struct ss_session_key *k)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *p = k->endpoint; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; /* "ab"+"c" is not "a"+"bc" */
    for (const char *p = k->host; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static struct entry **bucket_of(uint64_t hash)
{
    return &buckets[hash & (CACHE_BUCKETS - 1)];
}

static bool key_valid(const struct ss_session_key *k)
{
    return k != NULL && k->endpoint != NULL && k->host != NULL &&
           k->digest != NULL;
}

/* Called with cache_lock held, as are the list helpers below. */
static struct entry *find(const struct ss_session_key *k, uint64_t hash)
{
    for (struct entry *e = *bucket_of(hash); e != NULL; e = e->chain)
        if (e->hash == hash && strcmp(e->key, k->endpoint) == 0 &&
            strcmp(e->host, k->host) == 0)
            return e;
    return NULL;
}

static void lru_unlink(struct entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(struct entry *e)
{
    e->older = newest;
    e->newer = NULL;
    if (newest != NULL)
        newest->newer = e;
    newest = e;
    if (oldest == NULL)
        oldest = e;
}

/* Takes e out of the table and the list; the caller frees it unlocked. */
static void unlink_entry(struct entry *e)
{
    for (struct entry **p = bucket_of(e->hash); *p != NULL;
         p = &(*p)->chain) {
        if (*p == e) {
            *p = e->chain;
            break;
        }
    }
    lru_unlink(e);
    count--;
}

static void entry_free(struct entry *e)
{
    if (e == NULL)
        return;
    SSL_SESSION_free(e->sess);
    free(e);
}

static struct entry *entry_new(const struct ss_session_key *k, uint64_t hash)
{
    size_t ep_len = strlen(k->endpoint), host_len = strlen(k->host);
    struct entry *e = ss_calloc(1, sizeof(*e) + ep_len + host_len + 2);
    if (e == NULL)
        return NULL;
    e->hash = hash;
    memcpy(e->key, k->endpoint, ep_len + 1);
    e->host = e->key + ep_len + 1;
    memcpy(e->key + ep_len + 1, k->host, host_len + 1);
    return e;
}

/* Puts sess into e (which holds a session or none): returns the session
 * it held, for the caller to free unlocked. */
static SSL_SESSION *entry_fill(struct entry *e, const struct ss_session_key *k,
                               SSL_SESSION *sess, time_t expires)
{
    SSL_SESSION *old = e->sess;
    e->sess = sess;
    e->expires = expires;
    memcpy(e->digest, k->digest, SS_TRUST_DIGEST_LEN);
    return old;
}

/* Replaces the session of an existing entry for k; false when none. */
static bool replace(const struct ss_session_key *k, uint64_t hash,
                    SSL_SESSION *sess, time_t expires, SSL_SESSION **old)
{
    struct entry *e = find(k, hash);
    if (e == NULL)
        return false;
    *old = entry_fill(e, k, sess, expires);
    lru_unlink(e);
    lru_push(e);
    return true;
}

/* Inserts fresh (made unlocked) unless another thread inserted the key
 * meanwhile; returns what the caller must free: fresh or the evicted. */
static struct entry *insert(struct entry *fresh, const struct ss_session_key *k,
                            SSL_SESSION *sess, time_t expires,
                            SSL_SESSION **old)
{
    if (replace(k, fresh->hash, sess, expires, old))
        return fresh;
    *old = entry_fill(fresh, k, sess, expires);
    struct entry **b = bucket_of(fresh->hash);
    fresh->chain = *b;
    *b = fresh;
    lru_push(fresh);
    count++;
    if (count <= SS_SESSION_CACHE_MAX)
        return NULL;
    struct entry *evicted = oldest;
    unlink_entry(evicted);
    return evicted;
}

int ss_session_cache_put(const struct ss_session_key *key, SSL_SESSION *sess,
                         time_t now)
{
    SS_ENSURE(key_valid(key) && sess != NULL, SS_ERR_INVAL);
    time_t expires = session_expiry(sess);
    if (!SSL_SESSION_is_resumable(sess) || expires <= now)
        return SS_ERR_INVAL;
    uint64_t hash = key_hash(key);
    SSL_SESSION_up_ref(sess);
    SSL_SESSION *old = NULL;
    pthread_mutex_lock(&cache_lock);
    bool replaced = replace(key, hash, sess, expires, &old);
    pthread_mutex_unlock(&cache_lock);
    if (replaced) {
        SSL_SESSION_free(old);
        return SS_OK;
    }
    /* A key seen for the first time: its entry is made unlocked. */
    struct entry *fresh = entry_new(key, hash);
    if (fresh == NULL) {
        SSL_SESSION_free(sess);
        return SS_ERR_NOMEM;
    }
    pthread_mutex_lock(&cache_lock);
    struct entry *spare = insert(fresh, key, sess, expires, &old);
    pthread_mutex_unlock(&cache_lock);
    SSL_SESSION_free(old);
    if (spare == fresh)
        free(fresh); /* the key had come meanwhile; fresh holds nothing */
    else
        entry_free(spare);
    return SS_OK;
}

/* Whether e may serve k at now. */
static bool usable(const struct entry *e, const struct ss_session_key *k,
                   time_t now)
{
    return now < e->expires &&
           memcmp(e->digest, k->digest, SS_TRUST_DIGEST_LEN) == 0 &&
           SSL_SESSION_is_resumable(e->sess);
}

SSL_SESSION *ss_session_cache_get(const struct ss_session_key *key,
                                  time_t now)
{
    if (!key_valid(key))
        return NULL;
    uint64_t hash = key_hash(key);
    SSL_SESSION *sess = NULL;
    struct entry *dropped = NULL;
    pthread_mutex_lock(&cache_lock);
    struct entry *e = find(key, hash);
    if (e != NULL && usable(e, key, now)) {
        sess = e->sess;
        SSL_SESSION_up_ref(sess);
        lru_unlink(e);
        lru_push(e);
    } else if (e != NULL) {
        /* Expired, failed, or made under other trust settings: it can
         * never serve this key again. */
        unlink_entry(e);
        dropped = e;
    }
    pthread_mutex_unlock(&cache_lock);
    entry_free(dropped);
    return sess;
}

void ss_session_cache_drop(const struct ss_session_key *key)
{
    if (!key_valid(key))
        return;
    struct entry *e;
    pthread_mutex_lock(&cache_lock);
    e = find(key, key_hash(key));
    if (e != NULL)
        unlink_entry(e);
    pthread_mutex_unlock(&cache_lock);
    entry_free(e);
}

size_t ss_session_cache_count(void)
{
    pthread_mutex_lock(&cache_lock);
    size_t n = count;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

void ss_session_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    struct entry *all = newest;
    memset(buckets, 0, sizeof(buckets));
    newest = oldest = NULL;
    count = 0;
    pthread_mutex_unlock(&cache_lock);
    while (all != NULL) {
        struct entry *next = all->older;
        entry_free(all);
        all = next;
    }
}

/* ---- ticket keys ------------------------------------------------------------ */

struct ticket_key {
    unsigned char name[SS_TICKET_KEY_NAME_LEN];
    unsigned char aes[32];   /* AES-256-CBC */
    unsigned char hmac[32];  /* HMAC-SHA256 */
};

struct ss_ticket_keys {
    struct ss_ticket_keys *next;      /* the registry */
    int refs;                         /* contexts holding it */
    time_t idle_since;                /* when refs fell to 0 */
    char *endpoint;
    unsigned char digest[SS_TRUST_DIGEST_LEN];
    OSSL_LIB_CTX *libctx;             /* NULL: the default; borrowed */
    EVP_CIPHER *cipher;               /* fetched once */
    long long epoch;                  /* of cur */
    unsigned char ratchet[32];        /* the chain's state at epoch */
    struct ticket_key cur, prev;      /* epoch, epoch - 1 */
    bool have_prev;
    bool usable;                      /* false after a failed derivation */
};

/*
 * Guards the registry, every ring's refs and keys. A leaf like cache_lock:
 * the ticket callbacks copy a key under it and encrypt after unlocking.
 */
static pthread_mutex_t ticket_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ss_ticket_keys *registry;
static atomic_long ticket_skew;

void ss_ticket_clock_skew(long seconds)
{
    atomic_store(&ticket_skew, seconds);
}

static time_t ticket_now(void)
{
    return time(NULL) + (time_t)atomic_load(&ticket_skew);
}

/* Epochs follow the wall clock, so that separate processes with one
 * ratchet (a parent and its forked workers) rotate together. */
static long long epoch_of(time_t now)
{
    return now < 0 ? 0 : (long long)(now / SS_TICKET_ROTATE_S);
}

/* HMAC-SHA256(key, label) into out (32 bytes). */
static bool hmac_label(const struct ss_ticket_keys *k,
                       const unsigned char *key, const char *label,
                       unsigned char out[32])
{
    size_t len = 0;
    return EVP_Q_mac(k->libctx, "HMAC", NULL, "SHA256",
                     NULL, key, 32, (const unsigned char *)label,
                     strlen(label), out, 32, &len) != NULL &&
           len == 32;
}

/* The keys of the ratchet's current state. */
static bool derive(const struct ss_ticket_keys *k, struct ticket_key *out)
{
    unsigned char name[32];
    bool ok = hmac_label(k, k->ratchet, "secshim ticket name", name) &&
              hmac_label(k, k->ratchet, "secshim ticket aes", out->aes) &&
              hmac_label(k, k->ratchet, "secshim ticket hmac", out->hmac);
    memcpy(out->name, name, sizeof(out->name));
    OPENSSL_cleanse(name, sizeof(name));
    return ok;
}

/* One step forward; the old state is overwritten (forward secrecy). */
static bool ratchet_step(struct ss_ticket_keys *k)
{
    unsigned char next[32];
    bool ok = hmac_label(k, k->ratchet, "secshim ticket next", next);
    memcpy(k->ratchet, next, sizeof(next));
    OPENSSL_cleanse(next, sizeof(next));
    return ok;
}

/* Epochs a ratchet walks at most in one go (six weeks); a clock that
 * jumps further starts a new chain instead of spending seconds under the
 * lock (forked processes then stop sharing keys, which costs resumptions
 * only). */
#define RATCHET_WALK_MAX 1000

/*
 * Brings the keys to the epoch of now (called with ticket_lock held): the
 * key of the epoch before becomes prev, the chain steps on and derives
 * cur. A clock that went back keeps the keys it has. A failed derivation
 * leaves no usable key rather than an old one: tickets are then neither
 * issued nor accepted, which costs full handshakes, never a key kept too
 * long.
 */
static void advance(struct ss_ticket_keys *k, time_t now)
{
    long long target = epoch_of(now);
    if (target <= k->epoch)
        return;
    bool ok = true;
    if (target - k->epoch > RATCHET_WALK_MAX) {
        ok = RAND_priv_bytes_ex(k->libctx, k->ratchet, sizeof(k->ratchet),
                                0) == 1 &&
             derive(k, &k->cur);
        k->epoch = target - 1;
    }
    bool walked = false;
    while (ok && k->epoch < target - 1) {
        ok = ratchet_step(k);
        k->epoch++;
        walked = true;
    }
    if (ok && walked)
        ok = derive(k, &k->prev);
    else if (ok)
        k->prev = k->cur;
    ok = ok && ratchet_step(k) && derive(k, &k->cur);
    k->epoch = target;
    k->usable = ok;
    k->have_prev = ok;
}

static void keys_free(struct ss_ticket_keys *k)
{
    EVP_CIPHER_free(k->cipher);
    free(k->endpoint);
    OPENSSL_clear_free(k, sizeof(*k));
}

/* A new ring with one reference: a random chain, its first key. Returns
 * SS_OK with *out, SS_ERR_NOMEM or SS_ERR_TLS. */
static int keys_new(const char *endpoint, const unsigned char *digest,
                    OSSL_LIB_CTX *libctx, struct ss_ticket_keys **out,
                    struct ss_errbuf *err)
{
    struct ss_ticket_keys *k = OPENSSL_zalloc(sizeof(*k));
    if (k == NULL || (k->endpoint = ss_strdup(endpoint)) == NULL) {
        OPENSSL_free(k);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    k->refs = 1;
    k->libctx = libctx;
    memcpy(k->digest, digest, SS_TRUST_DIGEST_LEN);
    k->epoch = epoch_of(ticket_now());
    k->usable = true;
    ERR_clear_error();
    /* The FIPS context fetches with "fips=yes" by default (fips.h). */
    k->cipher = EVP_CIPHER_fetch(libctx, "AES-256-CBC", NULL);
    if (k->cipher == NULL ||
        RAND_priv_bytes_ex(libctx, k->ratchet, sizeof(k->ratchet), 0) != 1 ||
        !derive(k, &k->cur)) {
        keys_free(k);
        return ss_fail_openssl(err, SS_ERR_TLS,
                               "cannot make session ticket keys");
    }
    *out = k;
    return SS_OK;
}

/* How long a ring nobody holds is kept: its tickets live at most two
 * epochs, and a context built for the endpoint meanwhile (a reload, a
 * context built at first use after the old one was freed) must still
 * decrypt them. */
#define IDLE_KEEP_S (2 * SS_TICKET_ROTATE_S)

/* The ring for the triple, with a reference taken; called with
 * ticket_lock held. */
static struct ss_ticket_keys *registry_find(const char *endpoint,
                                            const unsigned char *digest,
                                            OSSL_LIB_CTX *libctx)
{
    for (struct ss_ticket_keys *k = registry; k != NULL; k = k->next) {
        if (strcmp(k->endpoint, endpoint) == 0 && k->libctx == libctx &&
            memcmp(k->digest, digest, SS_TRUST_DIGEST_LEN) == 0) {
            k->refs++;
            return k;
        }
    }
    return NULL;
}

/* Unlinks the rings idle for longer than IDLE_KEEP_S and returns them as
 * a list for the caller to free unlocked; called with ticket_lock held. */
static struct ss_ticket_keys *registry_sweep(time_t now)
{
    struct ss_ticket_keys *dead = NULL;
    for (struct ss_ticket_keys **p = &registry; *p != NULL;) {
        struct ss_ticket_keys *k = *p;
        if (k->refs > 0 || now - k->idle_since < IDLE_KEEP_S) {
            p = &k->next;
            continue;
        }
        *p = k->next;
        k->next = dead;
        dead = k;
    }
    return dead;
}

static void keys_free_list(struct ss_ticket_keys *k)
{
    while (k != NULL) {
        struct ss_ticket_keys *next = k->next;
        keys_free(k);
        k = next;
    }
}

int ss_ticket_keys_get(const char *endpoint, const unsigned char *digest,
                       OSSL_LIB_CTX *libctx, struct ss_ticket_keys **out,
                       struct ss_errbuf *err)
{
    *out = NULL;
    if (endpoint == NULL || digest == NULL)
        return ss_fail(err, SS_ERR_INVAL, "ticket keys need an endpoint");
    pthread_mutex_lock(&ticket_lock);
    struct ss_ticket_keys *dead = registry_sweep(ticket_now());
    *out = registry_find(endpoint, digest, libctx);
    pthread_mutex_unlock(&ticket_lock);
    keys_free_list(dead);
    if (*out != NULL)
        return SS_OK;
    /* Made unlocked (RAND, fetches); a ring another builder registered
     * meanwhile wins, so one endpoint never has two. */
    struct ss_ticket_keys *k = NULL;
    SS_GUARD(keys_new(endpoint, digest, libctx, &k, err));
    pthread_mutex_lock(&ticket_lock);
    *out = registry_find(endpoint, digest, libctx);
    if (*out == NULL) {
        k->next = registry;
        registry = k;
        *out = k;
        k = NULL;
    }
    pthread_mutex_unlock(&ticket_lock);
    if (k != NULL)
        keys_free(k);
    return SS_OK;
}

/* The last reference leaves the ring in the registry, idle, for
 * IDLE_KEEP_S; a later ss_ticket_keys_get erases it. */
void ss_ticket_keys_put(struct ss_ticket_keys *k)
{
    if (k == NULL)
        return;
    pthread_mutex_lock(&ticket_lock);
    if (--k->refs == 0)
        k->idle_since = ticket_now();
    pthread_mutex_unlock(&ticket_lock);
}

void ss_ticket_keys_name(struct ss_ticket_keys *k, time_t now,
                         unsigned char name[SS_TICKET_KEY_NAME_LEN])
{
    pthread_mutex_lock(&ticket_lock);
    advance(k, now);
    memcpy(name, k->cur.name, SS_TICKET_KEY_NAME_LEN);
    pthread_mutex_unlock(&ticket_lock);
}

/* The key for name at now into out: 1 current, 2 previous, 0 none.
 * Called with ticket_lock held. */
static int lookup(struct ss_ticket_keys *k, const unsigned char *name,
                  time_t now, struct ticket_key *out)
{
    advance(k, now);
    if (!k->usable)
        return 0;
    if (memcmp(name, k->cur.name, SS_TICKET_KEY_NAME_LEN) == 0) {
        *out = k->cur;
        return 1;
    }
    if (k->have_prev &&
        memcmp(name, k->prev.name, SS_TICKET_KEY_NAME_LEN) == 0) {
        *out = k->prev;
        return 2;
    }
    return 0;
}

int ss_ticket_keys_find(struct ss_ticket_keys *k,
                        const unsigned char name[SS_TICKET_KEY_NAME_LEN],
                        time_t now)
{
    struct ticket_key key;
    pthread_mutex_lock(&ticket_lock);
    int found = lookup(k, name, now, &key);
    pthread_mutex_unlock(&ticket_lock);
    OPENSSL_cleanse(&key, sizeof(key));
    return found;
}

/* Sets hctx to HMAC-SHA256 with key. */
static bool mac_init(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key,
                                                  32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

/*
 * OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb).
 * enc: a new ticket under the current key: 1, 0 (no usable key: no
 * ticket), or -1 on error. Otherwise the key named name: 1 (current), 2
 * (previous: renew the ticket), 0 (no such key: a full handshake).
 */
static int ticket_key_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct ss_ticket_keys *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
                                                   keys_index);
    if (k == NULL)
        return enc ? -1 : 0;
    struct ticket_key key;
    int found;
    pthread_mutex_lock(&ticket_lock);
    if (enc) {
        advance(k, ticket_now());
        key = k->cur;
        found = k->usable ? 1 : 0;
    } else {
        found = lookup(k, name, ticket_now(), &key);
    }
    pthread_mutex_unlock(&ticket_lock);
    int rc = found;
    if (enc && found != 0) {
        memcpy(name, key.name, SS_TICKET_KEY_NAME_LEN);
        if (RAND_bytes_ex(k->libctx, iv,
                          (size_t)EVP_CIPHER_get_iv_length(k->cipher),
                          0) != 1 ||
            EVP_EncryptInit_ex2(cctx, k->cipher, key.aes, iv, NULL) != 1 ||
            !mac_init(hctx, key.hmac))
            rc = -1;
    } else if (found != 0 &&
               (EVP_DecryptInit_ex2(cctx, k->cipher, key.aes, iv, NULL) !=
                    1 ||
                !mac_init(hctx, key.hmac))) {
        rc = -1;
    }
    OPENSSL_cleanse(&key, sizeof(key));
    return rc;
}

/* ---- callbacks -------------------------------------------------------------- */

static const struct ss_session_link *link_of(SSL *ssl)
{
    return SSL_get_ex_data(ssl, link_index);
}

/*
 * A client's new session (the end of a TLS 1.2 handshake, or a TLS 1.3
 * ticket read after it). A full handshake verified the server just now;
 * a resumed one carries the verdict of the handshake that did (OpenSSL
 * copies it into the session a new ticket makes). The cache takes its own
 * reference: 0 tells OpenSSL that this callback did not.
 */
static int client_new_session(SSL *ssl, SSL_SESSION *sess)
{
    const struct ss_session_link *l = link_of(ssl);
    if (l == NULL)
        return 0;
    time_t now = time(NULL);
    if (!SSL_session_reused(ssl) &&
        ss_session_set_verdict(sess, l->verified, now) != SS_OK)
        return 0;
    (void)ss_session_cache_put(&l->key, sess, now);
    return 0;
}

/* A server is about to seal a ticket: the verdict goes in with it. */
static int server_ticket_new(SSL *ssl, void *arg)
{
    (void)arg;
    if (SSL_session_reused(ssl))
        return 1; /* the resumed session's verdict is already there */
    const struct ss_session_link *l = link_of(ssl);
    return ss_session_set_verdict(SSL_get0_session(ssl),
                                  l != NULL ? l->verified : NULL,
                                  ticket_now()) == SS_OK;
}

/*
 * A server decrypted (or failed to decrypt) a ticket: a session without
 * a current verdict is not resumed, and the client gets a new ticket after
 * the full handshake. A TLS 1.3 resumption always gets a new ticket: an
 * OpenSSL client uses each TLS 1.3 ticket once (RFC 8446, C.4, asks
 * clients not to reuse them), so without one its next connection would be
 * a full handshake. TLS 1.2 renews when the previous key decrypted it.
 */
static SSL_TICKET_RETURN server_ticket_check(SSL *ssl, SSL_SESSION *sess,
                                             const unsigned char *name,
                                             size_t name_len,
                                             SSL_TICKET_STATUS status,
                                             void *arg)
{
    (void)name;
    (void)name_len;
    (void)arg;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        if (ticket_now() >= ss_session_trusted_until(sess))
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        return status == SSL_TICKET_SUCCESS &&
                       SSL_version(ssl) < TLS1_3_VERSION
                   ? SSL_TICKET_RETURN_USE
                   : SSL_TICKET_RETURN_USE_RENEW;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    default:
        return SSL_TICKET_RETURN_IGNORE;
    }
}

/* ---- contexts and connections ------------------------------------------------ */

int ss_session_client_ctx(SSL_CTX *ctx, struct ss_errbuf *err)
{
    if (!index_ready())
        return ss_fail(err, SS_ERR_TLS,
                       "cannot allocate OpenSSL ex_data indexes");
    /* NO_INTERNAL_STORE: OpenSSL's per-context store would not survive a
     * reload and is not shared with the cache; ours is both. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, client_new_session);
    return SS_OK;
}

int ss_session_server_ctx(SSL_CTX *ctx, struct ss_ticket_keys *keys,
                          struct ss_errbuf *err)
{
    if (!index_ready())
        return ss_fail(err, SS_ERR_TLS,
                       "cannot allocate OpenSSL ex_data indexes");
    /* Tickets only: a server-side store would hold a session per TLS 1.2
     * client that asks for none, in memory, for an hour. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER |
                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
    /* The lifetime a ticket is given: its key decrypts for one to two
     * epochs, so one epoch is a promise it keeps. */
    SSL_CTX_set_timeout(ctx, SS_TICKET_ROTATE_S);
    ERR_clear_error();
    SS_GUARD_OSSL(SSL_CTX_set_num_tickets(ctx, 1), err, SS_ERR_TLS,
                  "cannot set the number of session tickets");
    SS_GUARD_OSSL(SSL_CTX_set_ex_data(ctx, keys_index, keys), err,
                  SS_ERR_TLS, "cannot attach the ticket keys");
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) != 1)
        return ss_fail_openssl(err, SS_ERR_TLS,
                               "cannot set the ticket key callback");
    SS_GUARD_OSSL(SSL_CTX_set_session_ticket_cb(ctx, server_ticket_new,
                                                server_ticket_check, NULL),
                  err, SS_ERR_TLS, "cannot set the ticket callbacks");
    return SS_OK;
}

void ss_session_ctx_off(SSL_CTX *ctx, bool server)
{
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (server)
        (void)SSL_CTX_set_num_tickets(ctx, 0);
}

int ss_session_attach(SSL *ssl, const struct ss_session_link *link,
                      struct ss_errbuf *err)
{
    if (!index_ready())
        return ss_fail(err, SS_ERR_TLS,
                       "cannot allocate OpenSSL ex_data indexes");
    ERR_clear_error();
    SS_GUARD_OSSL(SSL_set_ex_data(ssl, link_index, (void *)link), err,
                  SS_ERR_TLS, "cannot attach the session link");
    if (SSL_is_server(ssl))
        return SS_OK;
    SSL_SESSION *cached = ss_session_cache_get(&link->key, time(NULL));
    if (cached == NULL)
        return SS_OK;
    /* Each connection gets a copy: OpenSSL marks the session it resumed
     * with as used (TLS 1.3) or failed, and that must not take the cached
     * one from connections starting meanwhile, before the new ticket
     * replaces it (docs/protocols.md, "Sessions"). No copy: a full
     * handshake. */
    SSL_SESSION *sess = SSL_SESSION_dup(cached);
    SSL_SESSION_free(cached);
    if (sess == NULL) {
        ERR_clear_error();
        return SS_OK;
    }
    /* Refused (a version this context cannot do): a full handshake. */
    if (SSL_set_session(ssl, sess) != 1)
        ERR_clear_error();
    SSL_SESSION_free(sess);
    return SS_OK;
}

void ss_session_handshake_done(SSL *ssl, struct ss_verify_result *res)
{
    if (!SSL_session_reused(ssl))
        return;
    SSL_SESSION *sess = SSL_get0_session(ssl);
    struct ss_session_verdict v = {.ok = false};
    (void)ss_session_get_verdict(sess, &v);
    res->resumed = true;
    res->ok = v.ok;
    res->relaxations = v.relaxations;
    const struct ss_session_link *l = link_of(ssl);
    /* TLS 1.2 calls no new-session callback on a resumed handshake, even
     * when the server renewed the ticket into a new session. */
    if (!SSL_is_server(ssl) && SSL_version(ssl) <= TLS1_2_VERSION &&
        l != NULL)
        (void)ss_session_cache_put(&l->key, sess, time(NULL));
}

/* ---- fork ------------------------------------------------------------------- */

void ss_session_fork_prepare(void)
{
    pthread_mutex_lock(&cache_lock);
    pthread_mutex_lock(&ticket_lock);
}

void ss_session_fork_parent(void)
{
    pthread_mutex_unlock(&ticket_lock);
    pthread_mutex_unlock(&cache_lock);
}

void ss_session_fork_child(void)
{
    /* Taken by this thread in prepare: unlocked, as in the parent. */
    pthread_mutex_unlock(&ticket_lock);
    pthread_mutex_unlock(&cache_lock);
}
