/*
 * test_status.c - the status file's pure rules (src/engine/status.c): its
 * name, /proc/PID/stat's fields and the stale check, the header's checks,
 * endpoint slots, and the last failure reason under its sequence counter
 * (never torn, never waited for).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secshim/common.h"
#include "secshim/status.h"

/* A /proc/PID/stat line as Linux writes it, with comm and starttime. */
static const char *stat_line(char *buf, size_t len, const char *comm,
                             unsigned long long start)
{
    snprintf(buf, len, "4242 (%s) S 1 4242 4242 0 -1 4194560 120 0 0 0 "
             "1 2 0 0 20 0 1 0 %llu 5652480 321 18446744073709551615 1 1 0 "
             "0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n", comm, start);
    return buf;
}

static struct ss_status_file *new_file(void)
{
    struct ss_status_file *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    return f;
}

static void test_file_name_round_trip(void **state)
{
    (void)state;
    char name[64];
    assert_int_equal(ss_status_file_name(name, sizeof(name), 1234, 5678),
                     SS_OK);
    assert_string_equal(name, "1234-5678");
    pid_t pid = 0;
    uint64_t start = 0;
    assert_int_equal(ss_status_parse_name(name, &pid, &start), SS_OK);
    assert_int_equal(pid, 1234);
    assert_int_equal(start, 5678);
    assert_int_equal(ss_status_parse_name("7-0", &pid, &start), SS_OK);
    assert_int_equal(pid, 7);
    assert_int_equal(start, 0);
    /* Too small a buffer is an error, not a cut name. */
    assert_int_equal(ss_status_file_name(name, 8, 1234, 5678), SS_ERR_INVAL);
}

static void test_parse_name_refuses_others(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", "12", "12-", "-1-2", "012-3", "12-03", "12-3x", "12-3.tmp",
        "0-5", "99999999999-1", "12--3", "+1-2", "1 -2", ".12-3",
        "12-99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pid_t pid = 99;
        uint64_t start = 99;
        if (ss_status_parse_name(bad[i], &pid, &start) != SS_ERR_INVAL)
            fail_msg("\"%s\" was taken for a status file name", bad[i]);
        assert_int_equal(pid, 99); /* nothing written on failure */
    }
}

static void test_proc_stat_fields(void **state)
{
    (void)state;
    char buf[512], comm[SS_STATUS_COMM_LEN];
    uint64_t start = 0;
    assert_int_equal(ss_proc_stat_parse(stat_line(buf, sizeof(buf),
                                                  "echo_server", 987654),
                                        comm, sizeof(comm), &start), SS_OK);
    assert_string_equal(comm, "echo_server");
    assert_int_equal(start, 987654);
    /* A comm may hold spaces and parentheses: it ends at the last ')'. */
    assert_int_equal(ss_proc_stat_parse(stat_line(buf, sizeof(buf),
                                                  "a) S 1 (b", 31),
                                        comm, sizeof(comm), &start), SS_OK);
    assert_string_equal(comm, "a) S 1 (b");
    assert_int_equal(start, 31);
    /* Cut to the buffer. */
    char small[4];
    assert_int_equal(ss_proc_stat_parse(stat_line(buf, sizeof(buf),
                                                  "longname", 5),
                                        small, sizeof(small), &start), SS_OK);
    assert_string_equal(small, "lon");
    /* Fewer than 22 fields, no parentheses, a field 22 that is no
     * number. */
    assert_int_equal(ss_proc_stat_parse("4242 (x) S 1 2 3", comm,
                                        sizeof(comm), &start), SS_ERR_INVAL);
    assert_int_equal(ss_proc_stat_parse("4242 x S 1 2 3", comm, sizeof(comm),
                                        &start), SS_ERR_INVAL);
    assert_int_equal(ss_proc_stat_parse(
                         "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 "
                         "12z 5", comm, sizeof(comm), &start), SS_ERR_INVAL);
}

static void test_liveness(void **state)
{
    (void)state;
    char buf[512];
    /* No /proc entry: the process is gone. */
    assert_int_equal(ss_status_liveness(100, NULL), SS_PROC_GONE);
    assert_int_equal(ss_status_liveness(100, stat_line(buf, sizeof(buf),
                                                       "srv", 100)),
                     SS_PROC_RUNNING);
    /* The same pid, started at another time: reused by another process. */
    assert_int_equal(ss_status_liveness(100, stat_line(buf, sizeof(buf),
                                                       "srv", 101)),
                     SS_PROC_REUSED);
    assert_int_equal(ss_status_liveness(100, "garbage"), SS_PROC_UNKNOWN);
}

static void test_header_checks(void **state)
{
    (void)state;
    struct ss_status_file *f = new_file();
    /* All zeros (a new file, or one an exec is rewriting): not one. */
    assert_int_equal(ss_status_check(f, sizeof(*f)), SS_ERR_INVAL);
    assert_int_equal(ss_status_init(f, 4242, 77, 1000, true, "/etc/p.cfg",
                                    "srv", 1700000000), SS_OK);
    assert_int_equal(f->magic, SS_STATUS_MAGIC);
    assert_int_equal(f->pid, 4242);
    assert_int_equal(f->start_time, 77);
    assert_int_equal(f->uid, 1000);
    assert_int_equal(f->compat, 1);
    assert_string_equal(f->policy, "/etc/p.cfg");
    assert_string_equal(f->comm, "srv");
    /* Being written: not to be read yet. */
    assert_int_equal(ss_status_check(f, sizeof(*f)), SS_ERR_STATE);
    atomic_store(&f->state, SS_STATUS_RUNNING);
    assert_int_equal(ss_status_check(f, sizeof(*f)), SS_OK);
    atomic_store(&f->state, SS_STATUS_EXECED);
    assert_int_equal(ss_status_check(f, sizeof(*f)), SS_OK);
    atomic_store(&f->state, 7);
    assert_int_equal(ss_status_check(f, sizeof(*f)), SS_ERR_INVAL);
    atomic_store(&f->state, SS_STATUS_RUNNING);
    /* A short file, another layout, an endpoint count out of bounds. */
    assert_int_equal(ss_status_check(f, sizeof(*f) - 1), SS_ERR_INVAL);
    f->version = SS_STATUS_VERSION + 1;
    assert_int_equal(ss_status_check(f, sizeof(*f)), SS_ERR_INVAL);
    f->version = SS_STATUS_VERSION;
    f->size = 8;
    assert_int_equal(ss_status_check(f, sizeof(*f)), SS_ERR_INVAL);
    f->size = sizeof(*f);
    atomic_store(&f->n_endpoints, SS_STATUS_MAX_ENDPOINTS + 1);
    assert_int_equal(ss_status_check(f, sizeof(*f)), SS_ERR_INVAL);
    atomic_store(&f->n_endpoints, 0);
    assert_int_equal(ss_status_check(f, sizeof(*f)), SS_OK);
    /* A policy path longer than the field is cut, still terminated. */
    char path[SS_STATUS_PATH_LEN + 50];
    memset(path, 'p', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(ss_status_init(f, 1, 1, 0, false, path, "x", 0), SS_OK);
    assert_int_equal(strlen(f->policy), SS_STATUS_PATH_LEN - 1);
    free(f);
}

static void test_endpoint_slots(void **state)
{
    (void)state;
    struct ss_status_file *f = new_file();
    struct ss_status_endpoint *a =
        ss_status_endpoint_add(f, "web", SS_STATUS_LISTEN, "0.0.0.0:443");
    struct ss_status_endpoint *b =
        ss_status_endpoint_add(f, "db", SS_STATUS_CONNECT, "db:5432");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal(atomic_load(&f->n_endpoints), 2);
    assert_string_equal(a->address, "0.0.0.0:443");
    assert_int_equal(b->role, SS_STATUS_CONNECT);
    /* A reload that keeps a name keeps its slot and its counts. */
    ss_status_add(&a->bytes_in, 5);
    assert_ptr_equal(ss_status_endpoint_add(f, "web", SS_STATUS_LISTEN,
                                            "0.0.0.0:443"), a);
    assert_int_equal(atomic_load(&a->bytes_in), 5);
    assert_ptr_equal(ss_status_endpoint_find(f, "db"), b);
    assert_null(ss_status_endpoint_find(f, "nope"));
    /* Long names are cut, and found by their full name. */
    char longname[100];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    struct ss_status_endpoint *c =
        ss_status_endpoint_add(f, longname, SS_STATUS_CONNECT, "x:1");
    assert_non_null(c);
    assert_int_equal(strlen(c->name), SS_STATUS_NAME_LEN - 1);
    assert_ptr_equal(ss_status_endpoint_find(f, longname), c);
    /* Full: no slot, nothing overwritten. */
    for (int i = 3; i < SS_STATUS_MAX_ENDPOINTS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "ep%d", i);
        assert_non_null(ss_status_endpoint_add(f, name, SS_STATUS_CONNECT,
                                               "y:1"));
    }
    assert_null(ss_status_endpoint_add(f, "one-too-many", SS_STATUS_CONNECT,
                                       "z:1"));
    assert_int_equal(atomic_load(&f->n_endpoints), SS_STATUS_MAX_ENDPOINTS);
    free(f);
}

static void test_reason_set_get(void **state)
{
    (void)state;
    struct ss_status_file *f = new_file();
    struct ss_status_endpoint *e =
        ss_status_endpoint_add(f, "web", SS_STATUS_LISTEN, "a:1");
    char out[SS_STATUS_REASON_LEN];
    int64_t when = -1;
    assert_int_equal(ss_status_reason_get(e, out, sizeof(out), &when), SS_OK);
    assert_string_equal(out, "");
    assert_int_equal(when, 0);
    assert_true(ss_status_reason_set(e, "peer certificate expired", 1234));
    assert_int_equal(ss_status_reason_get(e, out, sizeof(out), &when), SS_OK);
    assert_string_equal(out, "peer certificate expired");
    assert_int_equal(when, 1234);
    /* A shorter one replaces it whole; a long one is cut. */
    assert_true(ss_status_reason_set(e, "short", 1235));
    assert_int_equal(ss_status_reason_get(e, out, sizeof(out), &when), SS_OK);
    assert_string_equal(out, "short");
    char longer[400];
    memset(longer, 'r', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_true(ss_status_reason_set(e, longer, 1236));
    assert_int_equal(ss_status_reason_get(e, out, sizeof(out), &when), SS_OK);
    assert_int_equal(strlen(out), SS_STATUS_REASON_LEN - 1);
    /* A small output buffer cuts too. */
    char tiny[6];
    assert_int_equal(ss_status_reason_get(e, tiny, sizeof(tiny), &when),
                     SS_OK);
    assert_string_equal(tiny, "rrrrr");
    /* A writer at work (odd count): another writer does not wait and
     * drops its reason; a reader gives up after its tries, with "". */
    uint64_t seq = atomic_load(&e->reason_seq);
    atomic_store(&e->reason_seq, seq + 1);
    assert_false(ss_status_reason_set(e, "dropped", 1237));
    assert_int_equal(ss_status_reason_get(e, out, sizeof(out), &when),
                     SS_ERR_STATE);
    assert_string_equal(out, "");
    atomic_store(&e->reason_seq, seq + 2);
    assert_int_equal(ss_status_reason_get(e, out, sizeof(out), &when), SS_OK);
    assert_int_equal(strlen(out), SS_STATUS_REASON_LEN - 1);
    free(f);
}

/* Two writers alternate two reasons of different lengths and letters
 * while a reader reads: every read is one of them, whole. */
#define TORN_ROUNDS 1000000

struct torn_state {
    struct ss_status_endpoint *e;
    atomic_int done; /* writers finished */
};

static void *torn_writer(void *arg)
{
    struct torn_state *t = arg;
    char a[151], b[81];
    memset(a, 'A', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memset(b, 'B', sizeof(b) - 1);
    b[sizeof(b) - 1] = '\0';
    for (int i = 0; i < TORN_ROUNDS; i++)
        (void)ss_status_reason_set(t->e, (i & 1) ? a : b, i + 1);
    atomic_fetch_add(&t->done, 1);
    return NULL;
}

static void test_reason_never_torn(void **state)
{
    (void)state;
    struct ss_status_file *f = new_file();
    struct torn_state t = {
        ss_status_endpoint_add(f, "web", SS_STATUS_LISTEN, "a:1"), 0};
    pthread_t w1, w2;
    assert_int_equal(pthread_create(&w1, NULL, torn_writer, &t), 0);
    assert_int_equal(pthread_create(&w2, NULL, torn_writer, &t), 0);
    long reads = 0, good = 0, after = 0;
    /* Reads while the writers write (a read that meets a writer every
     * try gives up: counted, not checked), then some once they are done,
     * which must all succeed. */
    while (atomic_load(&t.done) < 2 || after++ < 1000) {
        char out[SS_STATUS_REASON_LEN];
        int64_t when;
        reads++;
        int rc = ss_status_reason_get(t.e, out, sizeof(out), &when);
        if (after > 0 && (rc != SS_OK || out[0] == '\0'))
            fail_msg("no reason read with no writer left");
        if (rc != SS_OK || out[0] == '\0')
            continue;
        size_t n = strlen(out);
        size_t same = strspn(out, out[0] == 'A' ? "A" : "B");
        if (!((out[0] == 'A' && n == 150) || (out[0] == 'B' && n == 80)) ||
            same != n)
            fail_msg("torn reason read: %zu bytes, starting %c, %zu alike",
                     n, out[0], same);
        good++;
    }
    pthread_join(w1, NULL);
    pthread_join(w2, NULL);
    assert_true(good >= 1000);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_name_round_trip),
        cmocka_unit_test(test_parse_name_refuses_others),
        cmocka_unit_test(test_proc_stat_fields),
        cmocka_unit_test(test_liveness),
        cmocka_unit_test(test_header_checks),
        cmocka_unit_test(test_endpoint_slots),
        cmocka_unit_test(test_reason_set_get),
        cmocka_unit_test(test_reason_never_torn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
