/*
 * test_eval.c: forecast scoring (ls_forecast_score) against values worked out by hand: the mean,
 * median and spread of the samples at each step, MSE and MAE per variable and for both, their
 * means over the systems, failed samples, and steps or systems that no sample reached (NaN).
 */
#include <math.h>

#include "lorasweep/common.h"
#include "lorasweep/eval.h"
#include "testing.h"

enum { S = 3, H = 2, K = 3 };

/* A forecast of S systems, H steps, K samples with every array allocated (ls_forecast_free frees). */
static ls_forecast make_forecast(void) {
    ls_forecast f = {.n_systems = S, .steps = H, .samples = K};
    size_t cells = (size_t)S * H * LS_LV_VARS;
    f.system = calloc(S, sizeof(int));
    f.alpha = calloc(S, sizeof(double));
    f.truth = calloc(cells, sizeof(float));
    f.mean = calloc(cells, sizeof(float));
    f.median = calloc(cells, sizeof(float));
    f.std = calloc(cells, sizeof(float));
    f.sample_values = calloc(cells * K, sizeof(float));
    f.failed = calloc(S, sizeof(int));
    f.mse = calloc((size_t)S * LS_METRIC_COUNT, sizeof(double));
    f.mae = calloc((size_t)S * LS_METRIC_COUNT, sizeof(double));
    return f;
}

static void set_truth(ls_forecast *f, int s, int h, float prey, float predator) {
    f->truth[((size_t)s * H + h) * 2] = prey;
    f->truth[((size_t)s * H + h) * 2 + 1] = predator;
}

static void set_sample(ls_forecast *f, int s, int k, int h, float prey, float predator) {
    float *x = f->sample_values + (((size_t)s * K + k) * H + h) * 2;
    x[0] = prey, x[1] = predator;
}

static float at(const float *a, int s, int h, int v) { return a[((size_t)s * H + h) * 2 + v]; }

static void test_scores_by_hand(void **state) {
    (void)state;
    ls_forecast f = make_forecast();
    /* System 0: sample 1 stops after step 0 (failed); the others reach both steps.
     *   step 0 prey 1, 6, 2 -> mean 3, median 2, std sqrt((4 + 9 + 1) / 3); truth 1: error 2
     *   step 0 predator 2, 3, 1 -> mean 2; truth 2: error 0
     *   step 1 prey 3, 5 -> mean 4, median 4, std 1; truth 3: error 1
     *   step 1 predator 6, 2 -> mean 4; truth 4: error 0
     *   MSE prey (4 + 1) / 2 = 2.5, MAE 1.5; predator 0, 0; both MSE 5/4, MAE 3/4 */
    set_truth(&f, 0, 0, 1, 2), set_truth(&f, 0, 1, 3, 4);
    set_sample(&f, 0, 0, 0, 1, 2), set_sample(&f, 0, 0, 1, 3, 6);
    set_sample(&f, 0, 1, 0, 6, 3), set_sample(&f, 0, 1, 1, NAN, NAN);
    set_sample(&f, 0, 2, 0, 2, 1), set_sample(&f, 0, 2, 1, 5, 2);
    /* System 1: no sample reaches step 1, sample 1 writes nothing: all three failed.
     *   step 0 prey 13, 13 -> error 3; predator 6, 6 -> error -4; step 1: no forecast
     *   MSE prey 9, MAE 3; predator 16, 4; both (9 + 16) / 2 = 12.5, MAE 3.5 */
    set_truth(&f, 1, 0, 10, 10), set_truth(&f, 1, 1, 10, 10);
    set_sample(&f, 1, 0, 0, 13, 6), set_sample(&f, 1, 0, 1, NAN, NAN);
    set_sample(&f, 1, 1, 0, NAN, NAN), set_sample(&f, 1, 1, 1, NAN, NAN);
    set_sample(&f, 1, 2, 0, 13, 6), set_sample(&f, 1, 2, 1, NAN, NAN);
    /* System 2: nothing parsed at all: every error NaN, left out of the means. */
    set_truth(&f, 2, 0, 1, 1), set_truth(&f, 2, 1, 1, 1);
    for (int k = 0; k < K; k++)
        for (int h = 0; h < H; h++) set_sample(&f, 2, k, h, NAN, NAN);
    /* Stale values where the scorer must write: it may not keep them. */
    f.failed[0] = 99, f.failed_total = -5;

    ls_forecast_score(&f);

    assert_float_equal(at(f.mean, 0, 0, 0), 3, 1e-6);
    assert_float_equal(at(f.median, 0, 0, 0), 2, 1e-6);
    assert_float_equal(at(f.std, 0, 0, 0), sqrt(14.0 / 3.0), 1e-6);
    assert_float_equal(at(f.mean, 0, 0, 1), 2, 1e-6);
    assert_float_equal(at(f.mean, 0, 1, 0), 4, 1e-6);
    assert_float_equal(at(f.median, 0, 1, 0), 4, 1e-6); /* even count: the middle two averaged */
    assert_float_equal(at(f.std, 0, 1, 0), 1, 1e-6);
    assert_float_equal(at(f.mean, 0, 1, 1), 4, 1e-6);
    assert_float_equal(at(f.mean, 1, 0, 0), 13, 1e-6);
    assert_float_equal(at(f.std, 1, 0, 0), 0, 1e-6);
    assert_true(isnan(at(f.mean, 1, 1, 0)) && isnan(at(f.median, 1, 1, 1)) && isnan(at(f.std, 1, 1, 0)));
    assert_true(isnan(at(f.mean, 2, 0, 0)));

    const double mse[S][3] = {{2.5, 0, 1.25}, {9, 16, 12.5}, {NAN, NAN, NAN}};
    const double mae[S][3] = {{1.5, 0, 0.75}, {3, 4, 3.5}, {NAN, NAN, NAN}};
    for (int s = 0; s < S; s++)
        for (int m = 0; m < LS_METRIC_COUNT; m++) {
            double got_se = f.mse[s * LS_METRIC_COUNT + m], got_ae = f.mae[s * LS_METRIC_COUNT + m];
            if (isnan(mse[s][m])) {
                assert_true(isnan(got_se) && isnan(got_ae));
                continue;
            }
            assert_float_equal(got_se, mse[s][m], 1e-9);
            assert_float_equal(got_ae, mae[s][m], 1e-9);
        }
    /* means over the systems that have a score (system 2 left out): (2.5 + 9) / 2, (0 + 16) / 2,
     * (1.25 + 12.5) / 2; MAE (1.5 + 3) / 2, (0 + 4) / 2, (0.75 + 3.5) / 2 */
    assert_float_equal(f.mse_mean[LS_METRIC_PREY], 5.75, 1e-9);
    assert_float_equal(f.mse_mean[LS_METRIC_PREDATOR], 8, 1e-9);
    assert_float_equal(f.mse_mean[LS_METRIC_BOTH], 6.875, 1e-9);
    assert_float_equal(f.mae_mean[LS_METRIC_PREY], 2.25, 1e-9);
    assert_float_equal(f.mae_mean[LS_METRIC_PREDATOR], 2, 1e-9);
    assert_float_equal(f.mae_mean[LS_METRIC_BOTH], 2.125, 1e-9);
    assert_int_equal(f.failed[0], 1);
    assert_int_equal(f.failed[1], 3);
    assert_int_equal(f.failed[2], 3);
    assert_int_equal(f.failed_total, 7);
    ls_forecast_free(&f);
}

/* Every sample of every system failed: the split's scores are NaN, not 0 (a NaN is never the
 * best trial; a 0 would be). */
static void test_nothing_parsed_is_nan(void **state) {
    (void)state;
    ls_forecast f = make_forecast();
    for (size_t i = 0; i < (size_t)S * K * H * 2; i++) f.sample_values[i] = NAN;
    ls_forecast_score(&f);
    for (int m = 0; m < LS_METRIC_COUNT; m++) assert_true(isnan(f.mse_mean[m]) && isnan(f.mae_mean[m]));
    assert_int_equal(f.failed_total, S * K);
    ls_forecast_free(&f);
}

/* A perfect forecast scores exactly 0 with no failure. */
static void test_perfect_forecast(void **state) {
    (void)state;
    ls_forecast f = make_forecast();
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++) {
            set_truth(&f, s, h, (float)(s + h), 0.5f * (float)h);
            for (int k = 0; k < K; k++) set_sample(&f, s, k, h, (float)(s + h), 0.5f * (float)h);
        }
    ls_forecast_score(&f);
    for (int m = 0; m < LS_METRIC_COUNT; m++) assert_true(f.mse_mean[m] == 0 && f.mae_mean[m] == 0);
    assert_int_equal(f.failed_total, 0);
    ls_forecast_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_by_hand),
        cmocka_unit_test(test_nothing_parsed_is_nan),
        cmocka_unit_test(test_perfect_forecast),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
