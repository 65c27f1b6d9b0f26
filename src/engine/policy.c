/* STUB: replaced by the policy module. */
#include "secshim/policy.h"
#include <stdlib.h>
const char *ss_opt_name(enum ss_opt opt) { (void)opt; return "?"; }
int ss_policy_load(const char *path, bool compat, struct ss_policy **out, struct ss_errbuf *err)
{ (void)path; (void)compat; *out = NULL; return ss_fail(err, SS_ERR_UNSUPPORTED, "policy: not implemented"); }
void ss_policy_ref(struct ss_policy *p) { (void)p; }
void ss_policy_unref(struct ss_policy *p) { (void)p; }
const struct ss_endpoint *ss_policy_match_connect(const struct ss_policy *p, const char *h, const struct sockaddr *a, socklen_t l)
{ (void)p; (void)h; (void)a; (void)l; return NULL; }
const struct ss_endpoint *ss_policy_match_listen(const struct ss_policy *p, const struct sockaddr *a, socklen_t l)
{ (void)p; (void)a; (void)l; return NULL; }
int ss_endpoint_fail(struct ss_errbuf *err, int code, const char *path, const struct ss_endpoint *ep, enum ss_opt opt, const char *fmt, ...)
{ (void)path; (void)ep; (void)opt; (void)fmt; return ss_fail(err, code, "stub"); }
