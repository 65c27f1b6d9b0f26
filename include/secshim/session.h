/*
 * session.h - TLS session resumption (docs/protocols.md, "Sessions";
 * docs/design.md, "Session resumption").
 *
 * Connect endpoints: the newest resumable session (a TLS 1.3 ticket or a
 * TLS 1.2 session) of each (endpoint name, server name) is kept in one
 * process-global cache: at most SS_SESSION_CACHE_MAX entries, the least
 * recently used evicted, each dropped at its own expiry, shared by every
 * thread and kept by a forked child. Every entry carries the trust digest
 * of the endpoint that made it; a lookup with another digest drops it, so
 * a session never crosses a change of the endpoint's trust settings.
 *
 * Listen endpoints: stateless tickets (TLS 1.3 and 1.2), encrypted with
 * keys held in memory. A new key every SS_TICKET_ROTATE_S seconds (on the
 * wall clock's hour), the previous one still decrypts, and a ticket it
 * decrypted is renewed. The keys of an epoch are derived from those of the
 * epoch before and the older ones erased (a forward ratchet), so processes
 * forked from one another keep agreeing on keys after each rotation while
 * a memory dump reveals no earlier key. Every context built for one
 * endpoint with one trust digest shares its keys, so a policy reload that
 * leaves the endpoint's trust alone keeps its tickets valid; one that
 * changes it makes new keys, and the old tickets fail to decrypt.
 *
 * Verdicts: every session either side keeps records whether the peer's
 * chain was accepted, which compatibility relaxations that took, and when
 * that full verification happened. A resumed handshake verifies nothing:
 * its verification result is the verdict's. A verdict older than
 * SS_SESSION_REVERIFY_S is refused by both sides, so a peer is verified in
 * full at least that often however long resumption goes on.
 *
 * Locks: one for the client cache, one for the ticket keys; both leaves
 * (held for a lookup, a copy or, once an hour, a key derivation; nothing,
 * not even the log, is taken under them). ss_session_fork_prepare takes
 * both.
 */
#ifndef SECSHIM_SESSION_H
#define SECSHIM_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "secshim/common.h"
#include "secshim/verify.h"

#define SS_SESSION_CACHE_MAX 1024
#define SS_TRUST_DIGEST_LEN 32       /* SHA-256 */
#define SS_TICKET_ROTATE_S 3600      /* ticket key epoch; server session timeout */
#define SS_SESSION_REVERIFY_S 86400  /* the longest a verdict is used */
#define SS_TICKET_KEY_NAME_LEN 16    /* the name at the head of a ticket */

/* What a client session is filed under. The strings and the digest are
 * the caller's; the cache copies what it keeps. */
struct ss_session_key {
    const char *endpoint;         /* the endpoint's name */
    const char *host;             /* the name sent as SNI and checked, or
                                     the address (the conn's host) */
    const unsigned char *digest;  /* SS_TRUST_DIGEST_LEN bytes */
};

/*
 * One connection's part in resumption, owned by the conn and alive as
 * long as its SSL. key is used by clients only; verified is the conn's
 * verification result, from which the sessions it makes take their
 * verdict.
 */
struct ss_session_link {
    struct ss_session_key key;
    const struct ss_verify_result *verified;
};

/* ---- the client cache ------------------------------------------------ */

/*
 * Keeps sess (the cache takes its own reference) as the session of key,
 * replacing the one kept so far. The entry expires at the earliest of the
 * session's timeout, its ticket lifetime hint, the peer certificate's
 * notAfter and its verdict's time + SS_SESSION_REVERIFY_S. Returns SS_OK,
 * SS_ERR_INVAL (not resumable, no verdict, or already expired at now: not
 * kept) or SS_ERR_NOMEM.
 */
int ss_session_cache_put(const struct ss_session_key *key, SSL_SESSION *sess,
                         time_t now);

/*
 * The session kept for key with one reference for the caller, or NULL.
 * An entry that expired, that OpenSSL marked not resumable (its
 * connection failed) or whose digest is not key's is dropped.
 */
SSL_SESSION *ss_session_cache_get(const struct ss_session_key *key,
                                  time_t now);

/* Forgets key's session: a handshake that offered it failed (connections
 * resume with copies, so OpenSSL's own "not resumable" mark on a failed
 * connection's session never reaches the cache). */
void ss_session_cache_drop(const struct ss_session_key *key);

/* Entries kept now; for tests and figures. */
size_t ss_session_cache_count(void);

/* Drops every entry (tests). */
void ss_session_cache_clear(void);

/* ---- verdicts ---------------------------------------------------------- */

struct ss_session_verdict {
    bool ok;               /* the peer's chain was verified and accepted */
    unsigned relaxations;  /* SS_RELAX_* that accepted it */
    time_t verified_at;    /* when */
};

/* Records res (NULL: nothing verified) as sess's verdict, verified at
 * `at`. Returns SS_OK or SS_ERR_NOMEM. */
int ss_session_set_verdict(SSL_SESSION *sess,
                           const struct ss_verify_result *res, time_t at);

/* sess's verdict into out; false when it has none. */
bool ss_session_get_verdict(SSL_SESSION *sess,
                            struct ss_session_verdict *out);

/* Until when sess's peer may be trusted without a new verification: its
 * verdict's time + SS_SESSION_REVERIFY_S, or the peer certificate's
 * notAfter if earlier; 0 without a verdict. Both sides refuse to resume
 * sess from then on. */
time_t ss_session_trusted_until(SSL_SESSION *sess);

/* ---- contexts and connections ------------------------------------------ */

struct ss_ticket_keys;

/* A client context keeps its sessions in the cache (OpenSSL's own client
 * store stays off). Returns SS_OK or SS_ERR_TLS. */
int ss_session_client_ctx(SSL_CTX *ctx, struct ss_errbuf *err);

/* A server context issues one ticket per handshake under keys, refuses
 * stale verdicts, and keeps no session itself. keys must outlive ctx.
 * Returns SS_OK or SS_ERR_TLS. */
int ss_session_server_ctx(SSL_CTX *ctx, struct ss_ticket_keys *keys,
                          struct ss_errbuf *err);

/* session-resumption = false: no cache, no tickets asked for or issued;
 * every handshake is full. */
void ss_session_ctx_off(SSL_CTX *ctx, bool server);

/*
 * Per connection on a context made by ss_session_client_ctx or
 * ss_session_server_ctx, before its handshake: link is where the
 * callbacks find the connection (it must outlive ssl). A client is
 * offered the cached session of link->key, if any. Returns SS_OK or
 * SS_ERR_TLS.
 */
int ss_session_attach(SSL *ssl, const struct ss_session_link *link,
                      struct ss_errbuf *err);

/*
 * At the end of a handshake on such a connection. When it resumed, res
 * takes the session's verdict (ok, relaxations) and says resumed; a TLS
 * 1.2 client keeps the session again (the server may have renewed its
 * ticket).
 */
void ss_session_handshake_done(SSL *ssl, struct ss_verify_result *res);

/* ---- ticket keys ---------------------------------------------------------- */

/*
 * The ticket keys of endpoint with trust digest (SS_TRUST_DIGEST_LEN
 * bytes), shared with every other holder of the same pair, with one
 * reference for the caller; libctx: where the keys are drawn, derived
 * and used (a FIPS endpoint's context, fips.h; NULL: OpenSSL's default),
 * which is part of what is shared. Returns SS_OK with *out, SS_ERR_NOMEM
 * or SS_ERR_TLS.
 */
int ss_ticket_keys_get(const char *endpoint, const unsigned char *digest,
                       OSSL_LIB_CTX *libctx, struct ss_ticket_keys **out,
                       struct ss_errbuf *err);

/* Drops a reference. A ring nobody holds is kept for two epochs (the
 * longest its tickets live: a context built for the endpoint meanwhile
 * takes it up again), then erased. NULL allowed. */
void ss_ticket_keys_put(struct ss_ticket_keys *k);

/* The name of the key that encrypts new tickets at now. */
void ss_ticket_keys_name(struct ss_ticket_keys *k, time_t now,
                         unsigned char name[SS_TICKET_KEY_NAME_LEN]);

/* Whether a ticket named name decrypts at now: 0 no, 1 with the current
 * key, 2 with the previous one (the ticket is then renewed). */
int ss_ticket_keys_find(struct ss_ticket_keys *k,
                        const unsigned char name[SS_TICKET_KEY_NAME_LEN],
                        time_t now);

/* Tests: the ticket side's clock (ticket keys, server verdicts) runs
 * seconds ahead of time(). */
void ss_ticket_clock_skew(long seconds);

/* ---- fork ------------------------------------------------------------------ */

/* For the host's pthread_atfork handlers: prepare takes both locks, the
 * parent releases them, the child re-makes them and keeps every entry and
 * key (a forked child resumes its parent's sessions). */
void ss_session_fork_prepare(void);
void ss_session_fork_parent(void);
void ss_session_fork_child(void);

#endif
