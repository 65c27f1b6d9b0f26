/*
 * own_openssl - a program that uses OpenSSL itself (the default library
 * context, algorithms the FIPS provider does not offer) and makes plain
 * TCP connections that secshim, preloaded, wraps in TLS. test/fips/run
 * runs it with a fips140-enabled endpoint: what it computes must not
 * change once the shim has made its FIPS connection (docs/fips.md).
 *
 * Usage: own_openssl [--late] [HOST PORT ...]
 *   Prints "before md5=HEX chacha20=HEX" (unless --late), then for each
 *   HOST PORT connects, sends "ping\n", prints "reply N: LINE" with the
 *   line the peer sent back, then prints "after md5=HEX chacha20=HEX".
 *   --late: the program's first use of OpenSSL comes after the
 *   connections. Exit 0, or 1 with a message on stderr.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = '\0';
}

/* MD5("abc") and ChaCha20-Poly1305 of a fixed text under a fixed key:
 * neither is offered by the FIPS provider. */
static int compute(const char *label)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest("abc", 3, md, &md_len, EVP_md5(), NULL) != 1) {
        fprintf(stderr, "own_openssl: %s: MD5 failed: ", label);
        ERR_print_errors_fp(stderr);
        return -1;
    }
    static const unsigned char key[32] = {1, 2, 3};
    static const unsigned char nonce[12] = {4, 5, 6};
    unsigned char ct[64];
    int len = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL &&
             EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key,
                                nonce) == 1 &&
             EVP_EncryptUpdate(ctx, ct, &len,
                               (const unsigned char *)"secshim", 7) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        fprintf(stderr, "own_openssl: %s: ChaCha20-Poly1305 failed: ",
                label);
        ERR_print_errors_fp(stderr);
        return -1;
    }
    char md_hex[2 * EVP_MAX_MD_SIZE + 1], ct_hex[2 * sizeof(ct) + 1];
    hex(md, md_len, md_hex);
    hex(ct, (size_t)len, ct_hex);
    printf("%s md5=%s chacha20=%s\n", label, md_hex, ct_hex);
    fflush(stdout);
    return 0;
}

/* One line exchanged over a connection the shim may wrap. */
static int ping(int n, const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
        fprintf(stderr, "own_openssl: cannot resolve %s\n", host);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        perror("own_openssl: connect");
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(ai);
    char line[256];
    size_t got = 0;
    if (write(fd, "ping\n", 5) != 5) {
        perror("own_openssl: write");
        close(fd);
        return -1;
    }
    while (got < sizeof(line) - 1) {
        ssize_t r = read(fd, line + got, 1);
        if (r <= 0 || line[got] == '\n')
            break;
        got++;
    }
    line[got] = '\0';
    close(fd);
    printf("reply %d: %s\n", n, line);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    int first = 1;
    int late = argc > 1 && strcmp(argv[1], "--late") == 0;
    if (late)
        first = 2;
    if ((argc - first) % 2 != 0) {
        fprintf(stderr, "usage: own_openssl [--late] [HOST PORT ...]\n");
        return 2;
    }
    if (!late && compute("before") != 0)
        return 1;
    for (int i = first, n = 1; i + 1 < argc; i += 2, n++)
        if (ping(n, argv[i], argv[i + 1]) != 0)
            return 1;
    return compute("after") == 0 ? 0 : 1;
}
