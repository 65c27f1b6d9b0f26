/*
 * tlslib.h - the engine's TLS half, loaded at its first need (tlslib.c;
 * include/secshim/tlsapi.h).
 */
#ifndef SECSHIM_SHIM_TLSLIB_H
#define SECSHIM_SHIM_TLSLIB_H

#include "secshim/common.h"

/* Finds libsecshim-tls.so beside this library. Called by the constructor
 * of an active shim, before main can change the working directory. */
void shim_tls_locate(void);

/*
 * Loads libsecshim-tls.so from this library's own directory, hands it the
 * shim's calls and before_openssl_cleanup (run by OpenSSL before it cleans
 * up), and makes the engine's TLS functions callable. Call once, before
 * the first TLS context is built (process.c does, under pthread_once).
 * Returns 0, or -1 with err saying why (the file is missing, is of another
 * build, or its libraries cannot be loaded): nothing TLS can then be done
 * in this process.
 */
int shim_tls_load(void (*before_openssl_cleanup)(void),
                  struct ss_errbuf *err);

#endif
