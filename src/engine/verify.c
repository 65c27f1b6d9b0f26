/* STUB: replaced by the verify module. */
#include "secshim/verify.h"
int ss_verifier_init(struct ss_verifier *v, const char *t, const char *c, enum ss_purpose p, bool compat, struct ss_errbuf *err)
{ (void)v; (void)t; (void)c; (void)p; (void)compat; return ss_fail(err, SS_ERR_UNSUPPORTED, "verify: not implemented"); }
void ss_verifier_free(struct ss_verifier *v) { (void)v; }
int ss_verify_chain(const struct ss_verifier *v, X509 *leaf, STACK_OF(X509) *u, const char *h, time_t at, struct ss_verify_result *r)
{ (void)v; (void)leaf; (void)u; (void)h; (void)at; (void)r; return SS_ERR_UNSUPPORTED; }
int ss_verifier_attach(SSL_CTX *ctx, const struct ss_verifier *v, struct ss_errbuf *err)
{ (void)ctx; (void)v; return ss_fail(err, SS_ERR_UNSUPPORTED, "stub"); }
int ss_verify_prepare_ssl(SSL *ssl, const char *h, struct ss_verify_result *r, struct ss_errbuf *err)
{ (void)ssl; (void)h; (void)r; return ss_fail(err, SS_ERR_UNSUPPORTED, "stub"); }
const char *ss_relaxation_name(enum ss_relaxation r) { (void)r; return "?"; }
