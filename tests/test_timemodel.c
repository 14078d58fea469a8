/*
 * test_timemodel.c: the time model (timemodel.h) against hand-worked numbers: keys per model,
 * shape and device; rates averaged over runs, the largest overhead, the safety factor; unknown
 * keys and unmeasured forecasts are NaN; a device-free key takes the slowest device; the journal's
 * cost records round-trip and rebuild the same model; and the runs of a time limit (packing
 * largest first, stages one after another, pieces longer than a run split or refused).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lorasweep/common.h"
#include "lorasweep/journal.h"
#include "lorasweep/timemodel.h"
#include "testing.h"

#define SAFE(x) (LS_TIME_SAFETY * (x) + LS_TIME_SLACK_S)

/* cmocka's float comparison is in single precision: these are doubles */
#define assert_double_equal(a, b, tol) assert_close_at((a), (b), (tol), __LINE__)
static void assert_close_at(double a, double b, double tol, int line) {
    if (fabs(a - b) <= tol) return;
    print_error("line %d: %.17g != %.17g (tolerance %g)\n", line, a, b, tol);
    fail();
}

static void test_predict(void **state) {
    (void)state;
    ls_time_model m = {0};
    char cpu[256], gpu[256], any[256], other[256];
    ls_time_key(cpu, sizeof cpu, "/m/qwen", 4, 256, "cpu 2 threads");
    ls_time_key(gpu, sizeof gpu, "/m/qwen", 4, 256, "gpu");
    ls_time_key(any, sizeof any, "/m/qwen", 4, 256, NULL);
    ls_time_key(other, sizeof other, "/m/qwen", 4, 128, "cpu 2 threads");
    assert_string_equal(cpu, "/m/qwen|4x256|cpu 2 threads");
    assert_string_equal(any, "/m/qwen|4x256|");
    ls_time_work w = {10, 4, 256, 0};
    assert_true(isnan(ls_time_predict(&m, cpu, &w))); /* never measured */
    /* two runs: 10 steps in 20 s (wall 25) and 30 steps in 40 s (wall 41): 60 s over 40 x 1024 tokens */
    ls_segment_cost a = {10, 4, 256, 20, 0, 0, 0, 25}, b = {30, 4, 256, 40, 0, 0, 0, 41};
    ls_time_model_add(&m, cpu, &a);
    ls_time_model_add(&m, cpu, &b);
    double rate = 60.0 / (40.0 * 1024);
    assert_double_equal(ls_time_predict(&m, cpu, &w), SAFE(5 + rate * 10 * 1024), 1e-9); /* overhead 5 = max(5, 1) */
    assert_true(isnan(ls_time_predict(&m, other, &w)));                                   /* another shape */
    assert_true(isnan(ls_time_predict(&m, gpu, &w)));                                     /* another device */
    ls_time_work f = {10, 4, 256, 100};
    assert_true(isnan(ls_time_predict(&m, cpu, &f))); /* the forecast was never measured */
    /* a run that forecast: 2 steps in 4 s, 600 tokens for 200 units in 30 s, wall 36 */
    ls_segment_cost c = {2, 4, 256, 4, 600, 200, 30, 36};
    ls_time_model_add(&m, cpu, &c);
    rate = 64.0 / (42.0 * 1024);
    assert_double_equal(ls_time_predict(&m, cpu, &f), SAFE(5 + rate * 10 * 1024 + 30.0 / 600 * (3 * 100)), 1e-9);
    /* a faster GPU; the device-free key takes the slower */
    ls_segment_cost g = {10, 4, 256, 1, 0, 0, 0, 2};
    ls_time_model_add(&m, gpu, &g);
    assert_double_equal(ls_time_predict(&m, gpu, &w), SAFE(1 + 1), 1e-9); /* overhead 1, then 10 steps as fast as the run measured */
    assert_double_equal(ls_time_predict(&m, any, &w), ls_time_predict(&m, cpu, &w), 1e-12);
    /* nothing measured adds nothing */
    ls_segment_cost none = {0, 4, 256, 0, 0, 0, 0, 3};
    ls_time_model_add(&m, other, &none);
    assert_int_equal(m.n, 2);
    ls_time_model_free(&m);
}

static void test_journal_round_trip(void **state) {
    (void)state;
    char dir[] = "/tmp/ls_timemodel_XXXXXX", path[300];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/r.h5", dir);
    ls_journal *j;
    assert_int_equal(ls_journal_open(path, "job", &j), LS_OK);
    ls_segment_cost a = {10, 4, 256, 20.125, 0, 0, 0, 25.5}, b = {3, 1, 128, 1e-3, 777, 300, 12.75, 14};
    assert_int_equal(ls_journal_trial_start(j, 7, 1, 1, "h", -1), LS_OK);
    assert_int_equal(ls_journal_trial_cost(j, 7, "/m|4x256|cpu 2 threads", &a), LS_OK);
    assert_int_equal(ls_journal_trial_cost(j, 9, "/m|1x128|gpu", &b), LS_OK);
    const ls_journal_state *live = ls_journal_current(j);
    assert_int_equal(live->n_costs, 2);
    assert_int_equal(ls_journal_status(live, 9), LS_RESULT_PENDING); /* a cost says nothing of a trial's state */
    ls_journal_close(j);
    char jpath[320];
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    ls_journal_state st;
    assert_int_equal(ls_journal_replay(jpath, &st), LS_OK);
    assert_int_equal(st.n_costs, 2);
    assert_int_equal(st.anomalies, 0);
    assert_string_equal(st.costs[1].key, "/m|1x128|gpu");
    assert_int_equal(st.costs[1].trial_id, 9);
    assert_memory_equal(&st.costs[0].cost, &a, sizeof a);
    assert_memory_equal(&st.costs[1].cost, &b, sizeof b);
    ls_time_model m = {0}, direct = {0};
    ls_time_model_from_journal(&m, &st);
    ls_time_model_add(&direct, "/m|4x256|cpu 2 threads", &a);
    ls_time_model_add(&direct, "/m|1x128|gpu", &b);
    ls_time_work w = {5, 4, 256, 0}, x = {5, 1, 128, 40};
    assert_double_equal(ls_time_predict(&m, "/m|4x256|cpu 2 threads", &w),
                        ls_time_predict(&direct, "/m|4x256|cpu 2 threads", &w), 0);
    assert_double_equal(ls_time_predict(&m, "/m|1x128|gpu", &x), ls_time_predict(&direct, "/m|1x128|gpu", &x), 0);
    ls_time_model_free(&m), ls_time_model_free(&direct);
    ls_journal_state_free(&st);
    unlink(jpath);
    snprintf(jpath, sizeof jpath, "%s.lock", path);
    unlink(jpath);
    rmdir(dir);
}

static void test_runs(void **state) {
    (void)state;
    double last = -1;
    size_t never = 99;
    /* one worker, runs of 10 s: 6+4 fill run 1, 7 then 3 fill run 2, 5 is run 3 */
    double s1[] = {6, 4, 7, 3, 5};
    int one[] = {0, 0, 0, 0, 0};
    assert_int_equal(ls_time_runs(s1, one, NULL, 5, 1, 10, &last, &never), 3);
    assert_double_equal(last, 5, 0);
    /* two workers: 7+3 and 6+4 in run 1, 5 in run 2 */
    assert_int_equal(ls_time_runs(s1, one, NULL, 5, 2, 10, &last, &never), 2);
    assert_double_equal(last, 5, 0);
    /* largest first packs what a first-come order would not: 8, then 2 fits beside it */
    double s2[] = {2, 8, 9};
    int z[] = {0, 0, 0};
    assert_int_equal(ls_time_runs(s2, z, NULL, 3, 1, 10, &last, &never), 2); /* 9 | 8+2 */
    /* stages: stage 1 (4) waits for stage 0 (6 and 3 on two workers, ending at 6): 6+4 = 10 fits */
    double s3[] = {6, 3, 4};
    int st3[] = {0, 0, 1};
    assert_int_equal(ls_time_runs(s3, st3, NULL, 3, 2, 10, &last, &never), 1);
    assert_double_equal(last, 10, 0);
    /* ... but not 5: a second run */
    double s4[] = {6, 3, 5};
    assert_int_equal(ls_time_runs(s4, st3, NULL, 3, 2, 10, &last, &never), 2);
    assert_double_equal(last, 5, 0);
    /* longer than a run: split when it checkpoints, else never */
    double s5[] = {25, 1};
    int z2[] = {0, 0};
    unsigned char split[] = {1, 0}, whole[] = {0, 0};
    assert_int_equal(ls_time_runs(s5, z2, split, 2, 1, 10, &last, &never), 3); /* 10 | 10 | 5+1 */
    assert_double_equal(last, 6, 0);
    assert_int_equal(ls_time_runs(s5, z2, whole, 2, 1, 10, &last, &never), -1);
    assert_int_equal(never, 0);
    assert_int_equal(ls_time_runs(NULL, NULL, NULL, 0, 1, 10, &last, &never), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict),
        cmocka_unit_test(test_journal_round_trip),
        cmocka_unit_test(test_runs),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
