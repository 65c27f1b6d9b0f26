/*
 * fips.h - the library context of fips140-enabled endpoints
 * (docs/fips.md, docs/design.md "FIPS").
 *
 * A private OSSL_LIB_CTX, never OpenSSL's default one: loading a provider
 * into the default context would stop OpenSSL from loading its default
 * provider there, and the program's own use of OpenSSL (MD5, ChaCha20,
 * anything the FIPS provider does not offer) would break. The context
 * loads an OpenSSL configuration (SECSHIM_FIPS_CONF, else OpenSSL's own
 * default file), then the "fips" and "base" providers, and fetches with
 * "fips=yes" by default. It is made at the first fips140-enabled build
 * and kept for the life of the process; a failed attempt keeps nothing,
 * so a later build tries again (a module installed meanwhile).
 */
#ifndef SECSHIM_FIPS_H
#define SECSHIM_FIPS_H

#include <openssl/types.h>

#include "secshim/common.h"

/* The environment variable naming the configuration the context loads. */
#define SS_FIPS_CONF_ENV "SECSHIM_FIPS_CONF"

/* The property query every fetch of a FIPS endpoint uses. */
#define SS_FIPS_PROPQ "fips=yes"

/*
 * The process's FIPS library context in *out (not to be freed). Returns
 * SS_OK, or SS_ERR_UNSUPPORTED with err saying which configuration and
 * module directory were tried and what OpenSSL reported (the provider is
 * missing, its self-test or MAC check failed), or SS_ERR_NOMEM.
 */
int ss_fips_libctx(OSSL_LIB_CTX **out, struct ss_errbuf *err);

/* The FIPS provider's name and version ("OpenSSL FIPS Provider 3.0.22")
 * once the context is made, else NULL. A static string. */
const char *ss_fips_provider(void);

#endif
