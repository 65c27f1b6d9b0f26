/* STUB: replaced by the protocol module. */
#include "secshim/protocol.h"
int ss_protocol_parse(const char *s, const char *t, const char *const *l, size_t n, struct ss_proto *out, struct ss_errbuf *err)
{ (void)s; (void)t; (void)l; (void)n; (void)out; return ss_fail(err, SS_ERR_UNSUPPORTED, "protocol: not implemented"); }
int ss_protocol_apply(SSL_CTX *ctx, const struct ss_proto *p, struct ss_errbuf *err)
{ (void)ctx; (void)p; return ss_fail(err, SS_ERR_UNSUPPORTED, "stub"); }
const char *ss_protocol_describe(const struct ss_proto *p, char *buf, size_t len) { (void)p; (void)len; buf[0] = 0; return buf; }
const char *ss_protocol_version_name(int v) { (void)v; return "unknown"; }
