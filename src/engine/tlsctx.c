/* STUB: replaced by the tlsctx module. */
#include "secshim/tlsctx.h"
int ss_tlsctx_new(const char *path, const struct ss_endpoint *ep, bool compat, struct ss_tlsctx **out, struct ss_errbuf *err)
{ (void)path; (void)ep; (void)compat; *out = NULL; return ss_fail(err, SS_ERR_UNSUPPORTED, "tlsctx: not implemented"); }
void ss_tlsctx_free(struct ss_tlsctx *t) { (void)t; }
int ss_tlsctx_days_left(const struct ss_tlsctx *t, time_t now) { (void)t; (void)now; return 0; }
