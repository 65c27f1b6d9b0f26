#!/bin/sh
# ec-pki.sh DIR - an ECDSA (P-256) CA and a server and a client leaf
# signed by it, for test/unit/test_alloc.c (which says why not RSA):
# ec-ca.pem, ec-server.pem/.key (DNS:localhost, serverAuth),
# ec-client.pem/.key (CN secshim-client, clientAuth). Valid 30 days.
set -e
cd "$1"
q() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; }
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ec-ca.key -out ec-ca.pem -days 30 -subj "/CN=secshim alloc EC CA" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -addext subjectKeyIdentifier=hash
for who in server client; do
    if [ $who = server ]; then cn=localhost eku=serverAuth san=DNS:localhost
    else cn=secshim-client eku=clientAuth san=DNS:secshim-client; fi
    q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout ec-$who.key -out ec-$who.csr -subj "/CN=$cn"
    printf '%s\n' basicConstraints=CA:FALSE keyUsage=critical,digitalSignature \
        extendedKeyUsage=$eku subjectAltName=$san subjectKeyIdentifier=hash \
        authorityKeyIdentifier=keyid:always > ec-$who.ext
    q openssl x509 -req -in ec-$who.csr -CA ec-ca.pem -CAkey ec-ca.key \
        -CAcreateserial -days 30 -extfile ec-$who.ext -out ec-$who.pem
done
