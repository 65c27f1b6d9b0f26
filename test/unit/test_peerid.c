/*
 * test_peerid.c - allow-peer identities (src/engine/peerid.c): every form
 * parsed, every malformed entry refused with its exact sentence, and the
 * comparison rules of each kind (exact subject attributes and URIs, DNS
 * names ignoring ASCII case with one-label wildcards, certificate
 * wildcards never expanded, IP addresses as bytes). The same rules
 * applied to real certificates are in test_verify.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "secshim/common.h"
#include "secshim/peerid.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/* A one-entry list of text; fails the test when it does not parse. */
static struct ss_peer_allow one(const char *text)
{
    struct ss_peer_allow a = {0};
    char why[512] = "";
    int rc = ss_peer_allow_add(&a, text, why, sizeof(why));
    if (rc != SS_OK)
        fail_msg("'%s' refused: %s", text, why);
    assert_int_equal(a.n, 1);
    return a;
}

/* text is refused with SS_ERR_CONFIG and exactly the sentence want, and
 * the list is left as it was. */
static void expect_refused(const char *text, const char *want)
{
    struct ss_peer_allow a = one("CN=kept");
    char why[512] = "";
    assert_int_equal(ss_peer_allow_add(&a, text, why, sizeof(why)),
                     SS_ERR_CONFIG);
    if (strcmp(why, want) != 0)
        fail_msg("'%s': want \"%s\"\ngot \"%s\"", text, want, why);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.ids[0].text, "CN=kept");
    ss_peer_allow_free(&a);
}

static bool text_matches(const char *entry, enum ss_peer_id_kind kind,
                         const char *value)
{
    struct ss_peer_allow a = one(entry);
    bool m = ss_peer_id_matches(&a.ids[0], kind, value, strlen(value));
    ss_peer_allow_free(&a);
    return m;
}

static bool ip_matches(const char *entry, int family, const char *addr)
{
    unsigned char bytes[16];
    assert_int_equal(inet_pton(family, addr, bytes), 1);
    struct ss_peer_allow a = one(entry);
    bool m = ss_peer_id_matches(&a.ids[0], SS_PEER_ID_IP, bytes,
                                family == AF_INET ? 4 : 16);
    ss_peer_allow_free(&a);
    return m;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                              */

static void test_parse_every_form(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum ss_peer_id_kind kind;
        const char *value;
    } forms[] = {
        {"CN=app one", SS_PEER_ID_CN, "app one"},
        {"OU=payments", SS_PEER_ID_OU, "payments"},
        {"O=Example Ltd, Inc.", SS_PEER_ID_O, "Example Ltd, Inc."},
        {"DNS:db.example.com", SS_PEER_ID_DNS, "db.example.com"},
        {"DNS:*.example.com", SS_PEER_ID_DNS, "*.example.com"},
        {"URI:spiffe://example.org/ns/a", SS_PEER_ID_URI,
         "spiffe://example.org/ns/a"},
        {"IP:192.0.2.7", SS_PEER_ID_IP, "192.0.2.7"},
        {"IP:2001:db8::1", SS_PEER_ID_IP, "2001:db8::1"},
        {"CN=Zoë", SS_PEER_ID_CN, "Zoë"},
    };
    struct ss_peer_allow a = {0};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char why[512] = "";
        assert_int_equal(ss_peer_allow_add(&a, forms[i].text, why,
                                           sizeof(why)), SS_OK);
        assert_int_equal(a.n, i + 1);
        assert_int_equal(a.ids[i].kind, forms[i].kind);
        assert_string_equal(a.ids[i].text, forms[i].text);
        assert_string_equal(a.ids[i].value, forms[i].value);
        assert_int_equal(a.ids[i].value_len, strlen(forms[i].value));
    }
    assert_false(a.ids[3].wildcard);
    assert_true(a.ids[4].wildcard);
    assert_int_equal(a.ids[6].addr_len, 4);
    assert_int_equal(a.ids[7].addr_len, 16);

    struct ss_peer_allow copy;
    assert_int_equal(ss_peer_allow_copy(&copy, &a), SS_OK);
    assert_int_equal(copy.n, a.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_ptr_not_equal(copy.ids[i].text, a.ids[i].text);
        assert_string_equal(copy.ids[i].value, a.ids[i].value);
        assert_true(copy.ids[i].value > copy.ids[i].text &&
                    copy.ids[i].value < copy.ids[i].text +
                    strlen(copy.ids[i].text));
    }
    ss_peer_allow_free(&a);
    assert_int_equal(a.n, 0);
    assert_null(a.ids);
    ss_peer_allow_free(&copy);
    ss_peer_allow_free(&copy); /* an empty list again */
}

static void test_parse_ipv4_mapped_is_ipv4(void **state)
{
    (void)state;
    struct ss_peer_allow a = one("IP:::ffff:192.0.2.7");
    assert_int_equal(a.ids[0].addr_len, 4);
    const unsigned char want[4] = {192, 0, 2, 7};
    assert_memory_equal(a.ids[0].addr, want, 4);
    ss_peer_allow_free(&a);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_refused("SAN=x", "'SAN=x': unknown form: use CN=, OU=, O=, DNS:, "
                   "URI: or IP: followed by the value");
    expect_refused("cn=app", "'cn=app': unknown form: use CN=, OU=, O=, "
                   "DNS:, URI: or IP: followed by the value");
    expect_refused("CN = app", "'CN = app': unknown form: use CN=, OU=, O=, "
                   "DNS:, URI: or IP: followed by the value");
    expect_refused("DNS=a.example", "'DNS=a.example': unknown form: use CN=, "
                   "OU=, O=, DNS:, URI: or IP: followed by the value");
    expect_refused("", "'': unknown form: use CN=, OU=, O=, DNS:, URI: or "
                   "IP: followed by the value");
    expect_refused("CN=", "'CN=': the value after the prefix is empty");
    expect_refused("OU=", "'OU=': the value after the prefix is empty");
    expect_refused("O=", "'O=': the value after the prefix is empty");
    expect_refused("DNS:", "'DNS:': the value after the prefix is empty");
    expect_refused("URI:", "'URI:': the value after the prefix is empty");
    expect_refused("IP:", "'IP:': the value after the prefix is empty");
    const char *bad_ip = "is not an IPv4 or IPv6 address (no brackets, no "
                         "prefix length, no zone)";
    char want[512];
    const char *ips[] = {"IP:300.1.1.1", "IP:1.2.3", "IP:[::1]",
                         "IP:10.0.0.0/8", "IP:fe80::1%eth0", "IP:localhost",
                         "IP: 10.0.0.1"};
    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
        snprintf(want, sizeof(want), "'%s': %s", ips[i], bad_ip);
        expect_refused(ips[i], want);
    }
    const char *wild = "a wildcard must be the whole left-most label of a "
                       "DNS name (\"DNS:*.example.com\")";
    const char *wilds[] = {"DNS:a.*.example.com", "DNS:w*.example.com",
                           "DNS:*w.example.com", "DNS:*", "DNS:*.",
                           "DNS:*.*.example.com", "DNS:example.*",
                           "DNS:**.example.com"};
    for (size_t i = 0; i < sizeof(wilds) / sizeof(wilds[0]); i++) {
        snprintf(want, sizeof(want), "'%s': %s", wilds[i], wild);
        expect_refused(wilds[i], want);
    }
    const char *bad_name = "is not a valid DNS name (labels of letters, "
                           "digits, '-' and '_', no trailing dot)";
    const char *names[] = {"DNS:a..example", "DNS:.example", "DNS:a.example.",
                           "DNS:a b.example", "DNS:a/b"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(want, sizeof(want), "'%s': %s", names[i], bad_name);
        expect_refused(names[i], want);
    }
    expect_refused("URI:example.org/a", "'URI:example.org/a': is not a URI "
                   "with a scheme (\"URI:spiffe://...\")");
    expect_refused("URI:spiffe:", "'URI:spiffe:': is not a URI with a "
                   "scheme (\"URI:spiffe://...\")");
    expect_refused("URI:1x:y", "'URI:1x:y': is not a URI with a scheme "
                   "(\"URI:spiffe://...\")");
    expect_refused("URI:sp_iffe://x", "'URI:sp_iffe://x': is not a URI "
                   "with a scheme (\"URI:spiffe://...\")");
    struct ss_peer_allow ok = one("URI:urn+x-y.z:thing");
    ss_peer_allow_free(&ok);
}

/* ------------------------------------------------------------------ */
/* Comparison                                                           */

static void test_subject_attributes_exact(void **state)
{
    (void)state;
    assert_true(text_matches("CN=app", SS_PEER_ID_CN, "app"));
    assert_false(text_matches("CN=app", SS_PEER_ID_CN, "App"));
    assert_false(text_matches("CN=app", SS_PEER_ID_CN, "app "));
    assert_false(text_matches("CN=app", SS_PEER_ID_CN, "ap"));
    assert_true(text_matches("OU=payments", SS_PEER_ID_OU, "payments"));
    assert_false(text_matches("OU=payments", SS_PEER_ID_OU, "Payments"));
    assert_true(text_matches("O=Example Ltd", SS_PEER_ID_O, "Example Ltd"));
    assert_false(text_matches("O=Example Ltd", SS_PEER_ID_O, "Example"));
    assert_true(text_matches("CN=Zoë", SS_PEER_ID_CN, "Zoë"));
    assert_false(text_matches("CN=Zoë", SS_PEER_ID_CN, "ZOË"));
    /* The kind must be the entry's: a CN entry says nothing of an OU. */
    assert_false(text_matches("CN=app", SS_PEER_ID_OU, "app"));
    assert_false(text_matches("O=app", SS_PEER_ID_CN, "app"));
    assert_false(text_matches("DNS:app", SS_PEER_ID_CN, "app"));
    /* An embedded NUL never matches the shorter text. */
    struct ss_peer_allow a = one("CN=app");
    assert_false(ss_peer_id_matches(&a.ids[0], SS_PEER_ID_CN, "app\0x", 5));
    assert_false(ss_peer_id_matches(&a.ids[0], SS_PEER_ID_CN, NULL, 0));
    assert_false(ss_peer_id_matches(NULL, SS_PEER_ID_CN, "app", 3));
    ss_peer_allow_free(&a);
}

static void test_uri_exact(void **state)
{
    (void)state;
    const char *e = "URI:spiffe://example.org/ns/a";
    assert_true(text_matches(e, SS_PEER_ID_URI, "spiffe://example.org/ns/a"));
    assert_false(text_matches(e, SS_PEER_ID_URI,
                              "spiffe://example.org/ns/a/b"));
    assert_false(text_matches(e, SS_PEER_ID_URI,
                              "SPIFFE://example.org/ns/a"));
    assert_false(text_matches(e, SS_PEER_ID_DNS,
                              "spiffe://example.org/ns/a"));
}

static void test_dns_literal(void **state)
{
    (void)state;
    const char *e = "DNS:db.example.com";
    assert_true(text_matches(e, SS_PEER_ID_DNS, "db.example.com"));
    assert_true(text_matches(e, SS_PEER_ID_DNS, "DB.Example.COM"));
    assert_true(text_matches("DNS:DB.EXAMPLE.com", SS_PEER_ID_DNS,
                             "db.example.com"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, "db.example.co"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, "xdb.example.com"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, "a.db.example.com"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, "db.example.com."));
    assert_false(text_matches(e, SS_PEER_ID_CN, "db.example.com"));
}

static void test_dns_wildcard_one_label(void **state)
{
    (void)state;
    const char *e = "DNS:*.example.com";
    assert_true(text_matches(e, SS_PEER_ID_DNS, "a.example.com"));
    assert_true(text_matches(e, SS_PEER_ID_DNS, "A-1.EXAMPLE.com"));
    assert_true(text_matches(e, SS_PEER_ID_DNS, "x"
                             "-very-long-label.example.com"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, "example.com"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, ".example.com"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, "a.b.example.com"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, "aexample.com"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, "a.example.org"));
    assert_false(text_matches(e, SS_PEER_ID_DNS, "a.example.com.evil"));
}

static void test_dns_certificate_wildcard_not_expanded(void **state)
{
    (void)state;
    /* A certificate for "*.example.com" stands for many hosts; it is
     * none of them in particular. */
    assert_false(text_matches("DNS:a.example.com", SS_PEER_ID_DNS,
                              "*.example.com"));
    assert_false(text_matches("DNS:example.com", SS_PEER_ID_DNS,
                              "*.example.com"));
    /* ... and a partial one is not a label for the entry's wildcard. */
    assert_false(text_matches("DNS:*.example.com", SS_PEER_ID_DNS,
                              "w*.example.com"));
    assert_false(text_matches("DNS:*.example.com", SS_PEER_ID_DNS,
                              "*.a.example.com"));
    assert_false(text_matches("DNS:*.example.com", SS_PEER_ID_DNS,
                              "*.example.org"));
    /* The same wildcard allowed as such matches it. */
    assert_true(text_matches("DNS:*.example.com", SS_PEER_ID_DNS,
                             "*.Example.com"));
}

static void test_ip_bytes(void **state)
{
    (void)state;
    assert_true(ip_matches("IP:192.0.2.7", AF_INET, "192.0.2.7"));
    assert_false(ip_matches("IP:192.0.2.7", AF_INET, "192.0.2.8"));
    assert_true(ip_matches("IP:2001:db8::1", AF_INET6, "2001:db8::1"));
    assert_true(ip_matches("IP:2001:db8:0:0:0:0:0:1", AF_INET6,
                           "2001:db8::1"));
    assert_true(ip_matches("IP:2001:DB8::1", AF_INET6, "2001:db8::1"));
    assert_false(ip_matches("IP:2001:db8::1", AF_INET6, "2001:db8::2"));
    assert_false(ip_matches("IP:::1", AF_INET, "0.0.0.1"));
    /* IPv4-mapped compares as the IPv4 address, on both sides. */
    assert_true(ip_matches("IP:::ffff:192.0.2.7", AF_INET, "192.0.2.7"));
    assert_true(ip_matches("IP:192.0.2.7", AF_INET6, "::ffff:192.0.2.7"));
    assert_false(ip_matches("IP:192.0.2.7", AF_INET6, "::192.0.2.7"));
    /* Text is never an address, and other lengths never match. */
    assert_false(text_matches("IP:127.0.0.1", SS_PEER_ID_IP, "127.0.0.1"));
    struct ss_peer_allow a = one("IP:127.0.0.1");
    const unsigned char five[5] = {127, 0, 0, 1, 0};
    assert_false(ss_peer_id_matches(&a.ids[0], SS_PEER_ID_IP, five, 5));
    assert_false(ss_peer_id_matches(&a.ids[0], SS_PEER_ID_DNS, five, 4));
    ss_peer_allow_free(&a);
}

static void test_prefixes(void **state)
{
    (void)state;
    assert_string_equal(ss_peer_id_prefix(SS_PEER_ID_CN), "CN=");
    assert_string_equal(ss_peer_id_prefix(SS_PEER_ID_OU), "OU=");
    assert_string_equal(ss_peer_id_prefix(SS_PEER_ID_O), "O=");
    assert_string_equal(ss_peer_id_prefix(SS_PEER_ID_DNS), "DNS:");
    assert_string_equal(ss_peer_id_prefix(SS_PEER_ID_URI), "URI:");
    assert_string_equal(ss_peer_id_prefix(SS_PEER_ID_IP), "IP:");
    assert_string_equal(ss_peer_id_prefix((enum ss_peer_id_kind)99), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_every_form),
        cmocka_unit_test(test_parse_ipv4_mapped_is_ipv4),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_subject_attributes_exact),
        cmocka_unit_test(test_uri_exact),
        cmocka_unit_test(test_dns_literal),
        cmocka_unit_test(test_dns_wildcard_one_label),
        cmocka_unit_test(test_dns_certificate_wildcard_not_expanded),
        cmocka_unit_test(test_ip_bytes),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
