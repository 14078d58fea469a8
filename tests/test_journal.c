/*
 * test_journal.c: the sweep journal: round trip of every record type, a torn tail at every byte
 * offset of the last record discarded (and truncated on open) with the rest kept, bit flips
 * detected (tail: discarded; middle: refused), the lock refusing a second opener, and the replay
 * state machine, a full disk (nothing acknowledged lost) and random bytes; early-stopping decisions
 * kept in order with exact values, and a stopped verdict's state.
 */
#include "testing.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <math.h>
#include <sys/stat.h>
#include <zlib.h>

#include "lorasweep/common.h"
#include "lorasweep/asha.h"
#include "lorasweep/journal.h"

static int counter;

/* A fresh results path (the journal and lock go beside it). */
static const char *fresh_path(char *buf, size_t cap) {
    snprintf(buf, cap, "%s/r%d.h5", temp_dir(), counter++);
    return buf;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static ls_result_metrics sample_metrics(void) {
    ls_result_metrics m;
    ls_result_metrics_init(&m);
    m.steps = 100;
    m.final_train_loss = 1.25;
    m.final_val_loss = 1.5;
    for (int i = 0; i < LS_METRIC_COUNT; i++) {
        m.mse[i] = 0.1 * (i + 1);
        m.mae[i] = 0.01 * (i + 1);
    }
    m.flops_train = 1e15;
    m.flops_validation = 2e13;
    m.flops_forecast = 3e12;
    m.flops_total = m.flops_train + m.flops_validation + m.flops_forecast;
    m.wall_seconds = 12.5;
    m.tokens_per_s = 4321.0;
    return m;
}

/* Write a journal with one of each record; return the size of the file before the last record. */
static size_t write_sample(const char *path, size_t *total) {
    ls_journal *j;
    assert_int_equal(ls_journal_open(path, "job-1", &j), LS_OK);
    ls_result_metrics m = sample_metrics();
    assert_int_equal(ls_journal_sweep_start(j, 0xabcdef0123456789ull, "job-1"), LS_OK);
    assert_int_equal(ls_journal_trial_start(j, 1, 1, 1, "node-a", 0), LS_OK);
    assert_int_equal(ls_journal_trial_progress(j, 1, 10, 2.5, NAN), LS_OK);
    assert_int_equal(ls_journal_trial_checkpoint(j, 1, 10), LS_OK);
    assert_int_equal(ls_journal_trial_done(j, 1, &m), LS_OK);
    assert_int_equal(ls_journal_trial_start(j, 2, 1, 2, "node-b", 1), LS_OK);
    assert_int_equal(ls_journal_trial_failed(j, 2, "NaN loss at step 3"), LS_OK);
    assert_int_equal(ls_journal_trial_skipped(j, 3, "over the FLOPS budget"), LS_OK);
    size_t before = ls_journal_current(j)->valid_bytes;
    assert_int_equal(ls_journal_trial_start(j, 4, 1, 1, "node-a", 0), LS_OK);
    *total = ls_journal_current(j)->valid_bytes;
    assert_int_equal(ls_journal_close(j), LS_OK);
    return before;
}

static void check_sample(const ls_journal_state *st, int with_last) {
    assert_int_equal(st->n_records, with_last ? 9 : 8);
    assert_int_equal(st->n_sweep_starts, 1);
    assert_true(st->grid_hash == 0xabcdef0123456789ull);
    assert_string_equal(st->job_id, "job-1");
    const ls_journal_trial *t1 = ls_journal_find(st, 1), *t2 = ls_journal_find(st, 2), *t3 = ls_journal_find(st, 3);
    assert_non_null(t1);
    assert_int_equal(t1->status, LS_RESULT_DONE);
    assert_int_equal(t1->attempts, 1);
    assert_int_equal(t1->checkpoint_step, 10);
    assert_int_equal(t1->progress_step, 10);
    assert_true(t1->last_loss == 2.5);
    assert_true(isnan(t1->last_val_loss));
    ls_result_metrics m = sample_metrics();
    assert_int_equal(t1->metrics.steps, 100);
    assert_memory_equal(t1->metrics.mse, m.mse, sizeof m.mse);
    assert_memory_equal(t1->metrics.mae, m.mae, sizeof m.mae);
    assert_true(t1->metrics.flops_total == m.flops_total && t1->metrics.tokens_per_s == m.tokens_per_s &&
                t1->metrics.final_val_loss == 1.5 && t1->metrics.final_train_loss == 1.25 &&
                t1->metrics.wall_seconds == 12.5 && t1->metrics.flops_forecast == 3e12);
    assert_int_equal(t2->status, LS_RESULT_FAILED);
    assert_int_equal(t2->rank, 2);
    assert_int_equal(t2->device, 1);
    assert_string_equal(t2->message, "NaN loss at step 3");
    assert_int_equal(t3->status, LS_RESULT_SKIPPED);
    assert_int_equal(t3->attempts, 0);
    assert_string_equal(t3->message, "over the FLOPS budget");
    assert_int_equal(ls_journal_status(st, 4), with_last ? LS_RESULT_RUNNING : LS_RESULT_PENDING);
    assert_int_equal(ls_journal_status(st, 99), LS_RESULT_PENDING);
    assert_null(ls_journal_find(st, 99));
    assert_int_equal(ls_journal_count(st, LS_RESULT_DONE), 1);
    assert_int_equal(st->anomalies, 0);
}

static void test_round_trip(void **state) {
    (void)state;
    char path[512], jpath[600];
    fresh_path(path, sizeof path);
    size_t total;
    write_sample(path, &total);
    ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
    struct stat sb;
    assert_int_equal(stat(jpath, &sb), 0);
    assert_int_equal((size_t)sb.st_size, total);
    ls_journal_state st;
    assert_int_equal(ls_journal_replay(jpath, &st), LS_OK);
    check_sample(&st, 1);
    assert_int_equal(st.discarded_bytes, 0);
    ls_journal_state_free(&st);

    /* Reopening replays the same state, and appends go on after it. */
    ls_journal *j;
    assert_int_equal(ls_journal_open(path, "job-2", &j), LS_OK);
    check_sample(ls_journal_current(j), 1);
    assert_int_equal(ls_journal_sweep_start(j, 0xabcdef0123456789ull, "job-2"), LS_OK);
    assert_int_equal(ls_journal_close(j), LS_OK);
    assert_int_equal(ls_journal_replay(jpath, &st), LS_OK);
    assert_int_equal(st.n_sweep_starts, 2);
    assert_string_equal(st.job_id, "job-2");
    ls_journal_state_free(&st);

    /* A missing journal is an empty state. */
    assert_int_equal(ls_journal_replay("/nonexistent/x.journal", &st), LS_OK);
    assert_int_equal(st.n_records, 0);
    ls_journal_state_free(&st);
}

static void test_torn_tail_every_offset(void **state) {
    (void)state;
    char path[512], jpath[600];
    fresh_path(path, sizeof path);
    size_t total, before = write_sample(path, &total);
    ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
    size_t n;
    char *full = ls_read_file(jpath, &n);
    assert_non_null(full);
    assert_int_equal(n, total);
    for (size_t cut = before; cut < total; cut++) {
        write_bytes(jpath, full, cut);
        ls_journal_state st;
        assert_int_equal(ls_journal_replay(jpath, &st), LS_OK);
        check_sample(&st, 0);
        assert_int_equal(st.discarded_bytes, cut - before);
        assert_int_equal(st.valid_bytes, before);
        ls_journal_state_free(&st);
        /* Open for appending truncates the tail; a new record then replays cleanly. */
        ls_journal *j;
        assert_int_equal(ls_journal_open(path, "job-1", &j), LS_OK);
        assert_int_equal(ls_journal_discarded(j), cut - before);
        assert_int_equal(ls_journal_trial_start(j, 4, 2, 1, "node-a", 0), LS_OK);
        assert_int_equal(ls_journal_close(j), LS_OK);
        assert_int_equal(ls_journal_replay(jpath, &st), LS_OK);
        assert_int_equal(st.discarded_bytes, 0);
        assert_int_equal(st.n_records, 9);
        assert_int_equal(ls_journal_status(&st, 4), LS_RESULT_RUNNING);
        ls_journal_state_free(&st);
    }
    /* A journal torn inside its 8-byte header is an empty journal; open starts it again. */
    for (size_t cut = 0; cut < LS_JOURNAL_MAGIC_LEN; cut++) {
        write_bytes(jpath, full, cut);
        ls_journal *j;
        assert_int_equal(ls_journal_open(path, "job-1", &j), LS_OK);
        assert_int_equal(ls_journal_current(j)->n_records, 0);
        assert_int_equal(ls_journal_close(j), LS_OK);
        ls_journal_state st;
        assert_int_equal(ls_journal_replay(jpath, &st), LS_OK);
        assert_int_equal(st.valid_bytes, LS_JOURNAL_MAGIC_LEN);
        ls_journal_state_free(&st);
    }
    free(full);
}

static void test_bit_flips(void **state) {
    (void)state;
    char path[512], jpath[600];
    fresh_path(path, sizeof path);
    size_t total, before = write_sample(path, &total);
    ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
    size_t n;
    char *full = ls_read_file(jpath, &n);
    char *copy = malloc(n);
    /* Every bit of the last record: that record is discarded, the others kept. */
    for (size_t at = before; at < total; at++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, full, n);
            copy[at] ^= (char)(1 << bit);
            write_bytes(jpath, copy, n);
            ls_journal_state st;
            assert_int_equal(ls_journal_replay(jpath, &st), LS_OK);
            check_sample(&st, 0);
            assert_int_equal(st.discarded_bytes, total - before);
            ls_journal_state_free(&st);
        }
    /* A flip in an earlier record: valid records follow, so replay and open refuse. */
    for (size_t at = LS_JOURNAL_MAGIC_LEN; at < before; at += 7) {
        memcpy(copy, full, n);
        copy[at] ^= 0x10;
        write_bytes(jpath, copy, n);
        ls_journal_state st;
        assert_int_equal(ls_journal_replay(jpath, &st), LS_ERR);
        assert_non_null(strstr(ls_last_error(), "damaged in the middle"));
        ls_journal *j;
        assert_int_equal(ls_journal_open(path, "job-1", &j), LS_ERR);
        struct stat sb;
        assert_int_equal(stat(jpath, &sb), 0);
        assert_int_equal((size_t)sb.st_size, n); /* nothing was truncated */
    }
    /* Not a journal at all. */
    write_bytes(jpath, "hello world, this is not a journal", 34);
    ls_journal_state st;
    assert_int_equal(ls_journal_replay(jpath, &st), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "not a lorasweep journal"));
    free(copy);
    free(full);
}

/* A complete record with a valid CRC that this version cannot decode (a newer type, a newer
 * payload version) is not a torn tail: replay and open refuse, and nothing is truncated. */
static void test_unknown_record(void **state) {
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        char path[512], jpath[600];
        fresh_path(path, sizeof path);
        size_t total;
        write_sample(path, &total);
        ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
        unsigned char frame[8 + 18] = {0};
        unsigned char *p = frame + 8;
        p[0] = variant == 0 ? 99 : LS_JREC_TRIAL_CHECKPOINT; /* an unknown type, or a known one ... */
        p[1] = variant == 0 ? 1 : 7;                         /* ... with a payload version from the future */
        uLong crc = crc32(0L, p, 18);
        for (int i = 0; i < 4; i++) frame[i] = (unsigned char)(18 >> (8 * i)), frame[4 + i] = (unsigned char)(crc >> (8 * i));
        FILE *f = fopen(jpath, "ab");
        assert_non_null(f);
        assert_int_equal(fwrite(frame, 1, sizeof frame, f), sizeof frame);
        fclose(f);
        ls_journal_state st;
        assert_int_equal(ls_journal_replay(jpath, &st), LS_ERR);
        assert_non_null(strstr(ls_last_error(), "cannot read"));
        ls_journal *j;
        assert_int_equal(ls_journal_open(path, "job-1", &j), LS_ERR);
        struct stat sb;
        assert_int_equal(stat(jpath, &sb), 0);
        assert_int_equal((size_t)sb.st_size, total + sizeof frame); /* nothing truncated */
    }
}

static void test_lock(void **state) {
    (void)state;
    char path[512], lpath[600];
    fresh_path(path, sizeof path);
    ls_journal *a, *b;
    assert_int_equal(ls_journal_open(path, "job-A", &a), LS_OK);
    assert_int_equal(ls_journal_open(path, "job-B", &b), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "another sweep is using these results"));
    assert_non_null(strstr(ls_last_error(), "job job-A pid"));
    ls_journal_paths(path, NULL, 0, lpath, sizeof lpath);
    size_t n;
    char *text = ls_read_file(lpath, &n);
    assert_non_null(strstr(text, "job job-A"));
    free(text);
    assert_int_equal(ls_journal_close(a), LS_OK);
    assert_int_equal(ls_journal_open(path, "job-B", &b), LS_OK); /* released by close */
    assert_int_equal(ls_journal_close(b), LS_OK);
}

static void test_state_machine(void **state) {
    (void)state;
    char path[512];
    fresh_path(path, sizeof path);
    ls_journal *j;
    assert_int_equal(ls_journal_open(path, "job", &j), LS_OK);
    const ls_journal_state *st = ls_journal_current(j);
    ls_result_metrics m = sample_metrics();
    /* start, checkpoint, done */
    assert_int_equal(ls_journal_trial_start(j, 10, 1, 1, "h", 0), LS_OK);
    assert_int_equal(ls_journal_status(st, 10), LS_RESULT_RUNNING);
    assert_int_equal(ls_journal_trial_checkpoint(j, 10, 50), LS_OK);
    assert_int_equal(ls_journal_find(st, 10)->checkpoint_step, 50);
    assert_int_equal(ls_journal_trial_done(j, 10, &m), LS_OK);
    assert_int_equal(ls_journal_status(st, 10), LS_RESULT_DONE);
    /* start, start again (interrupted, resumed): attempt 2, checkpoint kept */
    assert_int_equal(ls_journal_trial_start(j, 11, 1, 1, "h", 0), LS_OK);
    assert_int_equal(ls_journal_trial_checkpoint(j, 11, 20), LS_OK);
    assert_int_equal(ls_journal_trial_start(j, 11, 2, 2, "h", 1), LS_OK);
    assert_int_equal(ls_journal_find(st, 11)->attempts, 2);
    assert_int_equal(ls_journal_find(st, 11)->checkpoint_step, 20);
    assert_int_equal(ls_journal_status(st, 11), LS_RESULT_RUNNING);
    /* failed, then retried and done */
    assert_int_equal(ls_journal_trial_start(j, 12, 1, 1, "h", 0), LS_OK);
    assert_int_equal(ls_journal_trial_failed(j, 12, "out of memory"), LS_OK);
    assert_int_equal(ls_journal_status(st, 12), LS_RESULT_FAILED);
    assert_string_equal(ls_journal_find(st, 12)->message, "out of memory");
    assert_int_equal(ls_journal_trial_start(j, 12, 2, 1, "h", 0), LS_OK);
    assert_int_equal(ls_journal_status(st, 12), LS_RESULT_RUNNING);
    assert_string_equal(ls_journal_find(st, 12)->message, "");
    assert_int_equal(ls_journal_trial_done(j, 12, &m), LS_OK);
    /* done is final: a later start is an anomaly, ignored */
    assert_int_equal(ls_journal_trial_start(j, 10, 2, 1, "h", 0), LS_OK);
    assert_int_equal(ls_journal_status(st, 10), LS_RESULT_DONE);
    assert_int_equal(ls_journal_find(st, 10)->attempts, 1);
    assert_int_equal(st->anomalies, 1);
    assert_int_equal(ls_journal_count(st, LS_RESULT_DONE), 2);
    assert_int_equal(ls_journal_count(st, LS_RESULT_RUNNING), 1);
    /* Long text is cut, not refused. */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(ls_journal_trial_skipped(j, 13, big), LS_OK);
    assert_int_equal(strlen(ls_journal_find(st, 13)->message), LS_JOURNAL_TEXT_MAX - 1);
    /* Replay after close gives the same state as the live one. */
    ls_journal_state live = *st;
    ls_journal_trial copy[8];
    assert_true(live.n_trials <= 8);
    memcpy(copy, live.trials, (size_t)live.n_trials * sizeof *copy);
    int n_trials = live.n_trials, anomalies = live.anomalies;
    char jpath[600];
    ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
    assert_int_equal(ls_journal_close(j), LS_OK);
    ls_journal_state re;
    assert_int_equal(ls_journal_replay(jpath, &re), LS_OK);
    assert_int_equal(re.n_trials, n_trials);
    assert_int_equal(re.anomalies, anomalies);
    for (int i = 0; i < n_trials; i++) {
        assert_true(re.trials[i].id == copy[i].id);
        assert_int_equal(re.trials[i].status, copy[i].status);
        assert_int_equal(re.trials[i].attempts, copy[i].attempts);
        assert_int_equal(re.trials[i].checkpoint_step, copy[i].checkpoint_step);
        assert_string_equal(re.trials[i].message, copy[i].message);
    }
    ls_journal_state_free(&re);
}

/* Early-stopping decisions: kept in order with their exact values (a NaN too), replayed the same;
 * a stopped verdict makes the trial stopped with its step, value and FLOPS, and closes its attempt;
 * a stop after done is an anomaly. */
static void test_decisions(void **state) {
    (void)state;
    char path[512], jpath[600];
    fresh_path(path, sizeof path);
    ls_journal *j;
    assert_int_equal(ls_journal_open(path, "job", &j), LS_OK);
    const ls_journal_state *st = ls_journal_current(j);
    const ls_journal_decision d[] = {
        {20, LS_ES_START, 0, 2, 0, NAN, NAN, NAN},
        {20, LS_ES_PAUSED, 0, 2, 1, 1.0 / 3.0, NAN, 1.5e9},
        {21, LS_ES_START, 0, 2, 0, NAN, NAN, NAN},
        {21, LS_ES_PAUSED, 0, 2, 2, 0.1, 0.1, 1.5e9},
        {21, LS_ES_PROMOTED, 0, 2, 2, 0.1, 0.1, NAN},
        {20, LS_ES_STOPPED, 0, 2, 2, 1.0 / 3.0, 0.1, 1.5e9},
    };
    size_t n = sizeof d / sizeof d[0];
    assert_int_equal(ls_journal_trial_start(j, 20, 1, 1, "h", 0), LS_OK);
    assert_int_equal(ls_journal_trial_checkpoint(j, 20, 2), LS_OK);
    assert_int_equal(ls_journal_trial_start(j, 21, 1, 1, "h", 0), LS_OK);
    for (size_t i = 0; i < n; i++) assert_int_equal(ls_journal_trial_decision(j, &d[i]), LS_OK);
    ls_result_metrics m = sample_metrics();
    assert_int_equal(ls_journal_trial_done(j, 21, &m), LS_OK);
    const ls_journal_decision late = {21, LS_ES_STOPPED, 1, 4, 1, 0.05, NAN, 3e9};
    assert_int_equal(ls_journal_trial_decision(j, &late), LS_OK); /* after done: ignored */
    for (int pass = 0; pass < 2; pass++) { /* live, then replayed */
        assert_int_equal(st->n_decisions, (int)n + 1);
        for (size_t i = 0; i < n; i++) {
            const ls_journal_decision *g = &st->decisions[i];
            assert_true(g->trial_id == d[i].trial_id);
            assert_int_equal(g->verdict, d[i].verdict);
            assert_int_equal(g->rung, d[i].rung), assert_int_equal(g->step, d[i].step);
            assert_int_equal(g->n_at_rung, d[i].n_at_rung);
            assert_memory_equal(&g->value, &d[i].value, sizeof g->value); /* bit for bit, NaN too */
            assert_memory_equal(&g->cutoff, &d[i].cutoff, sizeof g->cutoff);
            assert_memory_equal(&g->flops, &d[i].flops, sizeof g->flops);
        }
        const ls_journal_trial *t = ls_journal_find(st, 20);
        assert_int_equal(t->status, LS_RESULT_STOPPED);
        assert_int_equal(t->metrics.steps, 2);
        assert_true(t->metrics.final_val_loss == 1.0 / 3.0 && t->metrics.flops_total == 1.5e9);
        assert_true(isnan(t->metrics.final_train_loss));
        assert_string_equal(t->message, "stopped early at rung 0 (step 2): val 0.333333");
        assert_int_equal(t->crashes, 0);
        assert_int_equal(ls_journal_status(st, 21), LS_RESULT_DONE);
        assert_int_equal(ls_journal_count(st, LS_RESULT_STOPPED), 1);
        assert_int_equal(st->anomalies, 1);
        assert_string_equal(ls_result_status_name(LS_RESULT_STOPPED), "stopped");
        if (pass == 0) {
            ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
            assert_int_equal(ls_journal_close(j), LS_OK);
            static ls_journal_state re;
            assert_int_equal(ls_journal_replay(jpath, &re), LS_OK);
            st = &re;
        } else {
            ls_journal_state_free((ls_journal_state *)st);
        }
    }
}

/* A full disk: appends fail once the file cannot grow (RLIMIT_FSIZE stands in for ENOSPC); every
 * acknowledged record is there on the next open, nothing else, and later appends fail too. */
static void test_disk_full(void **state) {
    (void)state;
    char path[512], jpath[600];
    fresh_path(path, sizeof path);
    ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
    ls_journal *j;
    assert_int_equal(ls_journal_open(path, "job", &j), LS_OK);
    assert_int_equal(ls_journal_sweep_start(j, 1, "job"), LS_OK);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)ls_journal_current(j)->valid_bytes + 200;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int acknowledged = 1, rc = LS_OK;
    for (int i = 0; i < 100 && rc == LS_OK; i++) {
        rc = ls_journal_trial_failed(j, (uint64_t)i + 1, "a message of some length to fill the file");
        if (rc == LS_OK) acknowledged++;
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, LS_ERR);
    assert_non_null(strstr(ls_last_error(), "cannot append"));
    assert_true(acknowledged > 1 && acknowledged < 100);
    assert_int_equal(ls_journal_trial_failed(j, 999, "after"), LS_ERR); /* closed for writing */
    assert_int_equal(ls_journal_current(j)->n_records, acknowledged);
    assert_int_equal(ls_journal_close(j), LS_OK);
    ls_journal_state st;
    assert_int_equal(ls_journal_replay(jpath, &st), LS_OK);
    assert_int_equal(st.n_records, acknowledged);
    assert_int_equal(st.discarded_bytes, 0);
    ls_journal_state_free(&st);
}

/* Hostile bytes after a valid header: replay returns OK or an error, never crashes or reads out
 * of bounds (run under ASan in the sanitizer build). */
static void test_random_bytes(void **state) {
    (void)state;
    char path[512], jpath[600];
    fresh_path(path, sizeof path);
    size_t total;
    write_sample(path, &total);
    ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
    size_t n;
    char *full = ls_read_file(jpath, &n);
    uint64_t rng = 42;
    unsigned char buf[1024];
    for (int round = 0; round < 2000; round++) {
        size_t len = LS_JOURNAL_MAGIC_LEN + (size_t)(ls_rng_next(&rng) % (sizeof buf - LS_JOURNAL_MAGIC_LEN));
        if (round % 2 && len <= n) { /* the real journal with a few random bytes changed */
            memcpy(buf, full, len);
            for (int k = 0; k < 3; k++) buf[ls_rng_next(&rng) % len] = (unsigned char)ls_rng_next(&rng);
            memcpy(buf, LS_JOURNAL_MAGIC, LS_JOURNAL_MAGIC_LEN);
        } else {
            memcpy(buf, LS_JOURNAL_MAGIC, LS_JOURNAL_MAGIC_LEN);
            for (size_t k = LS_JOURNAL_MAGIC_LEN; k < len; k++) buf[k] = (unsigned char)ls_rng_next(&rng);
        }
        write_bytes(jpath, buf, len);
        ls_journal_state st;
        int rc = ls_journal_replay(jpath, &st);
        assert_true(rc == LS_OK || rc == LS_ERR);
        if (rc == LS_OK) {
            assert_true(st.valid_bytes + st.discarded_bytes == len);
            ls_journal_state_free(&st);
        }
    }
    free(full);
}

static void test_encode_limits(void **state) {
    (void)state;
    ls_journal_record r = {.type = LS_JREC_TRIAL_CHECKPOINT, .trial_id = 5, .step = 7};
    unsigned char buf[64];
    assert_int_equal(ls_journal_encode(&r, buf, 4), 0);
    assert_int_equal(ls_journal_encode(&r, buf, sizeof buf), 8 + 18 + 4);
    r.type = (ls_jrec_type)99;
    assert_int_equal(ls_journal_encode(&r, buf, sizeof buf), 0);
    assert_string_equal(ls_result_status_name(LS_RESULT_SKIPPED), "skipped");
    assert_string_equal(ls_result_status_name(42), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_torn_tail_every_offset),
        cmocka_unit_test(test_bit_flips),        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_state_machine),    cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_disk_full),        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_unknown_record),   cmocka_unit_test(test_decisions),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
