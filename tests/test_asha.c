/*
 * test_asha.c: the rules of early stopping (asha.h) against tables worked out by hand: the rungs,
 * ASHA's promotions as units arrive one by one with a free worker asking after each arrival
 * (eta 2, 3 and 4; ties to the lower unit whatever the order of arrival; NaN never promoted; a
 * late arrival promoted past units that arrived before it; the highest rung first), and the
 * median rule (too few others, odd and even counts, NaN on either side, equal to the median).
 */
#include <math.h>

#include "lorasweep/asha.h"
#include "lorasweep/common.h"
#include "testing.h"

static void test_rungs(void **state) {
    (void)state;
    int r[LS_ES_MAX_RUNGS];
    assert_int_equal(ls_es_rungs(50, 3, 500, r, LS_ES_MAX_RUNGS), 4);
    assert_int_equal(r[0], 50), assert_int_equal(r[1], 150), assert_int_equal(r[2], 450), assert_int_equal(r[3], 500);
    assert_int_equal(ls_es_rungs(2, 2, 8, r, LS_ES_MAX_RUNGS), 3);
    assert_int_equal(r[0], 2), assert_int_equal(r[1], 4), assert_int_equal(r[2], 8);
    assert_int_equal(ls_es_rungs(4, 4, 16, r, LS_ES_MAX_RUNGS), 2); /* 16 is the top, not a rung below it */
    assert_int_equal(r[0], 4), assert_int_equal(r[1], 16);
    assert_int_equal(ls_es_rungs(1, 2, 2147483647, r, LS_ES_MAX_RUNGS), 32); /* 2^0 .. 2^30, then the top */
    assert_int_equal(r[30], 1 << 30), assert_int_equal(r[31], 2147483647);
    assert_int_equal(ls_es_asha_survivors(9, 3, 3), 1);
    assert_int_equal(ls_es_asha_survivors(27, 3, 3), 3);
    assert_int_equal(ls_es_asha_survivors(8, 3, 3), 0);
    assert_int_equal(ls_es_asha_survivors(2, 3, 1), 2); /* only the top: nothing stops */
    assert_string_equal(ls_es_verdict_name(LS_ES_PROMOTED), "promoted");
    assert_string_equal(ls_es_verdict_name(99), "unknown");
}

/* Ask as a free worker would: expect unit `want` from rung `rung` (cutoff, n), or nothing (-1);
 * a promotion found is taken. */
static void expect_next(ls_es *e, long want, int rung, double cutoff, size_t n) {
    size_t u = 0, m = 0;
    int k = -1;
    double cut = 0;
    int got = ls_es_asha_next(e, &u, &k, &cut, &m);
    if (want < 0) {
        if (got) fail_msg("expected no promotion, got unit %zu from rung %d", u, k);
        return;
    }
    if (!got) fail_msg("expected unit %ld from rung %d, got no promotion", want, rung);
    assert_int_equal(u, (size_t)want);
    assert_int_equal(k, rung);
    assert_int_equal(m, n);
    assert_true(cut == cutoff);
    ls_es_promote(e, u, k);
}

/* eta 3, three rungs (0, 1, top). Arrivals at rung 0 with a question after each:
 *   unit  value  n  top  ranking (top part)         answer
 *   0     0.9    1  0    -                          none
 *   1     0.5    2  0    -                          none
 *   2     0.7    3  1    1                          1 (cutoff 0.5)
 *   3     0.3    4  1    3                          3 (cutoff 0.3)
 *   4     0.8    5  1    3*                         none (3 was promoted)
 *   5     0.6    6  2    3* 1*                      none
 *   6     0.4    7  2    3* 6                       6 (cutoff 0.4)
 *   7     1.0    8  2    3* 6*                      none
 * Then 1, 3 and 6 reach rung 1 (0.45, 0.25, 0.35): n_1 = 3, top 1 = unit 3, taken before
 * anything at rung 0. Unit 8 arrives late at rung 0 with 0.2: n = 9, top 3 = 8 3* 6*: unit 8
 * (cutoff 0.4), though seven units arrived before it. */
static void test_asha_eta3(void **state) {
    (void)state;
    ls_es e;
    ls_es_init(&e, 9, 3, 3, 0);
    const double v[8] = {0.9, 0.5, 0.7, 0.3, 0.8, 0.6, 0.4, 1.0};
    const long want[8] = {-1, -1, 1, 3, -1, -1, 6, -1};
    const double cut[8] = {0, 0, 0.5, 0.3, 0, 0, 0.4, 0};
    const size_t n[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(ls_es_record(&e, (size_t)i, 0, v[i]), LS_OK);
        expect_next(&e, want[i], 0, cut[i], n[i]);
    }
    assert_int_equal(ls_es_record(&e, 1, 0, 0.1), LS_ERR); /* once per rung */
    assert_int_equal(ls_es_record(&e, 1, 3, 0.1), LS_ERR); /* no such rung */
    ls_es_record(&e, 1, 1, 0.45);
    expect_next(&e, -1, 0, 0, 0);
    ls_es_record(&e, 3, 1, 0.25);
    ls_es_record(&e, 6, 1, 0.35);
    size_t m;
    assert_true(ls_es_asha_cutoff(&e, 1, &m) == 0.25 && m == 3);
    assert_true(isnan(ls_es_asha_cutoff(&e, 2, &m)) && m == 0);
    ls_es_record(&e, 8, 0, 0.2);
    expect_next(&e, 3, 1, 0.25, 3); /* the highest rung first */
    expect_next(&e, 8, 0, 0.4, 9);  /* the late arrival */
    expect_next(&e, -1, 0, 0, 0);
    assert_true(ls_es_recorded(&e, 8, 0) && !ls_es_recorded(&e, 8, 1));
    ls_es_free(&e);
}

/* eta 2, ties: all four units at 0.5 arrive in the order 3, 2, 0, 1.
 *   arrival  n  top  ranking (ties by unit)   answer
 *   3        1  0    -                        none
 *   2        2  1    2                        2 (the lower unit, though 3 came first)
 *   0        3  1    0                        0 (0 now ranks first: the top is that one alone)
 *   1        4  2    0* 1                     1
 * The top rung (rung 1 of 2) promotes nothing. */
static void test_asha_eta2_ties(void **state) {
    (void)state;
    ls_es e;
    ls_es_init(&e, 4, 2, 2, 0);
    ls_es_record(&e, 3, 0, 0.5);
    expect_next(&e, -1, 0, 0, 0);
    ls_es_record(&e, 2, 0, 0.5);
    expect_next(&e, 2, 0, 0.5, 2);
    ls_es_record(&e, 0, 0, 0.5);
    expect_next(&e, 0, 0, 0.5, 3);
    ls_es_record(&e, 1, 0, 0.5);
    expect_next(&e, 1, 0, 0.5, 4);
    expect_next(&e, -1, 0, 0, 0);
    ls_es_record(&e, 2, 1, 0.1), ls_es_record(&e, 0, 1, 0.2), ls_es_record(&e, 1, 1, 0.3);
    expect_next(&e, -1, 0, 0, 0); /* the top */
    ls_es_free(&e);
}

/* eta 2, NaN: NaN ranks last and is never promoted, even inside the top.
 *   arrival  value  n  top  ranking          answer
 *   0        NaN    1  0    -                none
 *   1        NaN    2  1    NaN(0)           none: a NaN
 *   2        0.7    3  1    2                2 (cutoff 0.7)
 *   3        NaN    4  2    2* NaN(0)        none */
static void test_asha_nan(void **state) {
    (void)state;
    ls_es e;
    ls_es_init(&e, 4, 3, 2, 0);
    ls_es_record(&e, 0, 0, NAN);
    expect_next(&e, -1, 0, 0, 0);
    ls_es_record(&e, 1, 0, NAN);
    expect_next(&e, -1, 0, 0, 0);
    ls_es_record(&e, 2, 0, 0.7);
    expect_next(&e, 2, 0, 0.7, 3);
    ls_es_record(&e, 3, 0, NAN);
    expect_next(&e, -1, 0, 0, 0);
    size_t m;
    assert_true(isnan(ls_es_asha_cutoff(&e, 0, &m)) && m == 4); /* the top 2: 0.7 and a NaN */
    ls_es_free(&e);
}

/* eta 4: eight units, unit i at 0.1 * (8 - i), arriving in index order (the best last).
 *   after 4 (0..3): top 1 = unit 3 (0.5)
 *   after 8: top 2 = 7 (0.1), 6 (0.2): 7 then 6, cutoff 0.2 both times */
static void test_asha_eta4(void **state) {
    (void)state;
    ls_es e;
    ls_es_init(&e, 8, 3, 4, 0);
    for (int i = 0; i < 4; i++) {
        if (i < 3) expect_next(&e, -1, 0, 0, 0);
        ls_es_record(&e, (size_t)i, 0, 0.1 * (8 - i));
    }
    expect_next(&e, 3, 0, 0.1 * 5, 4);
    for (int i = 4; i < 8; i++) ls_es_record(&e, (size_t)i, 0, 0.1 * (8 - i));
    expect_next(&e, 7, 0, 0.1 * 2, 8);
    expect_next(&e, 6, 0, 0.1 * 2, 8);
    expect_next(&e, -1, 0, 0, 0);
    ls_es_free(&e);
}

/* The median rule, min_trials 3, at rung 0, each unit judged then recorded (values exact in
 * binary, so that "equal to the median" is exact):
 *   unit  value  others (sorted)                  n  median  verdict
 *   0     1.0    -                                0  NaN     continue (too few)
 *   1     2.0    1.0                              1  1.0     continue (too few, though worse)
 *   2     0.5    1.0 2.0                          2  1.5     continue
 *   3     1.5    0.5 1.0 2.0                      3  1.0     cut
 *   4     1.25   0.5 1.0 1.5 2.0                  4  1.25    continue (equal is not worse)
 *   5     NaN    0.5 1.0 1.25 1.5 2.0             5  1.25    cut (NaN is worse than anything)
 *   6     1.375  0.5 1.0 1.25 1.5 2.0 NaN         6  1.375   continue
 *   7     9.0    0.5 1.0 1.25 1.375 1.5 2.0 NaN   7  1.375   cut
 * and at rung 1, unit 0 alone is judged against nobody. */
static void test_median(void **state) {
    (void)state;
    ls_es e;
    ls_es_init(&e, 8, 3, 3, 3);
    const double v[8] = {1.0, 2.0, 0.5, 1.5, 1.25, NAN, 1.375, 9.0};
    const double med[8] = {NAN, 1.0, 1.5, 1.0, 1.25, 1.25, 1.375, 1.375};
    const ls_es_verdict want[8] = {LS_ES_CONTINUE, LS_ES_CONTINUE, LS_ES_CONTINUE, LS_ES_CUT,
                                   LS_ES_CONTINUE, LS_ES_CUT,      LS_ES_CONTINUE, LS_ES_CUT};
    for (int i = 0; i < 8; i++) {
        double cut;
        size_t n;
        ls_es_verdict got = ls_es_median(&e, (size_t)i, 0, v[i], &cut, &n);
        assert_int_equal(n, (size_t)i);
        if (isnan(med[i])) assert_true(isnan(cut));
        else if (cut != med[i]) fail_msg("unit %d: median %.17g, want %.17g", i, cut, med[i]);
        assert_int_equal(got, want[i]);
        ls_es_record(&e, (size_t)i, 0, v[i]);
    }
    double cut;
    size_t n;
    assert_int_equal(ls_es_median(&e, 0, 1, 5.0, &cut, &n), LS_ES_CONTINUE);
    assert_true(n == 0 && isnan(cut));
    /* a unit is never its own other: judged again at rung 0, unit 7 sees the 7 others */
    assert_int_equal(ls_es_median(&e, 7, 0, 9.0, &cut, &n), LS_ES_CUT);
    assert_int_equal(n, 7);
    ls_es_free(&e);
}

/* Two NaN in the middle of the others: the median is +infinity, so a finite value continues. */
static void test_median_nan_others(void **state) {
    (void)state;
    ls_es e;
    ls_es_init(&e, 4, 2, 3, 3);
    ls_es_record(&e, 0, 0, NAN), ls_es_record(&e, 1, 0, NAN), ls_es_record(&e, 2, 0, 1.0);
    double cut;
    size_t n;
    assert_int_equal(ls_es_median(&e, 3, 0, 100.0, &cut, &n), LS_ES_CONTINUE);
    assert_true(n == 3 && isinf(cut));
    ls_es_free(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rungs),       cmocka_unit_test(test_asha_eta3), cmocka_unit_test(test_asha_eta2_ties),
        cmocka_unit_test(test_asha_nan),    cmocka_unit_test(test_asha_eta4), cmocka_unit_test(test_median),
        cmocka_unit_test(test_median_nan_others),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
