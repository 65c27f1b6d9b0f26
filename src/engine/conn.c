/* STUB: replaced by the conn module. */
#include "secshim/conn.h"
#include <sys/socket.h>
const struct ss_io_ops ss_io_libc = { recv, send };
int ss_conn_new(struct ss_policy *p, const struct ss_endpoint *ep, int fd, const struct ss_io_ops *io, const char *h, struct ss_conn **out, struct ss_errbuf *err)
{ (void)p; (void)ep; (void)fd; (void)io; (void)h; *out = NULL; return ss_fail(err, SS_ERR_UNSUPPORTED, "conn: not implemented"); }
void ss_conn_free(struct ss_conn *c) { (void)c; }
int ss_conn_handshake(struct ss_conn *c) { (void)c; return SS_ERR_UNSUPPORTED; }
int ss_conn_read(struct ss_conn *c, void *b, size_t l, bool peek, size_t *n) { (void)c; (void)b; (void)l; (void)peek; *n = 0; return SS_ERR_UNSUPPORTED; }
int ss_conn_write(struct ss_conn *c, const void *b, size_t l, size_t *n) { (void)c; (void)b; (void)l; *n = 0; return SS_ERR_UNSUPPORTED; }
int ss_conn_flush(struct ss_conn *c) { (void)c; return SS_ERR_UNSUPPORTED; }
int ss_conn_shutdown(struct ss_conn *c) { (void)c; return SS_ERR_UNSUPPORTED; }
size_t ss_conn_pending(const struct ss_conn *c) { (void)c; return 0; }
size_t ss_conn_unsent(const struct ss_conn *c) { (void)c; return 0; }
enum ss_conn_state ss_conn_state(const struct ss_conn *c) { (void)c; return SS_CONN_FAILED; }
int ss_conn_wants(const struct ss_conn *c) { (void)c; return 0; }
const char *ss_conn_error(const struct ss_conn *c) { (void)c; return "not implemented"; }
int ss_conn_sys_errno(const struct ss_conn *c) { (void)c; return 0; }
const char *ss_conn_describe(const struct ss_conn *c, char *buf, size_t len) { (void)c; (void)len; buf[0] = 0; return buf; }
const struct ss_endpoint *ss_conn_endpoint(const struct ss_conn *c) { (void)c; return NULL; }
const struct ss_verify_result *ss_conn_verify_result(const struct ss_conn *c) { (void)c; return NULL; }
int ss_conn_handshake_timeout_ms(const struct ss_conn *c) { (void)c; return 0; }
