/*
 * test_text.c: the LLMTIME scheme and token windows (src/text.c).
 *
 * Encoding is checked against snprintf("%.*f") byte for byte (the fast path must never differ,
 * near-ties included), against the known start of the real data set, and for speed. Decoding is
 * checked case by case for each malformed pattern a model can emit, by round trips, and by a
 * randomized robustness test whose buffers are exactly len bytes with no NUL (malloc'ed, so ASan
 * sees any overread). Windows are checked against a brute-force construction.
 */
#include "testing.h"

#include <math.h>

#include "lorasweep/common.h"
#include "lorasweep/data.h"
#include "lorasweep/text.h"

/* xorshift64*: a small deterministic generator for the randomized tests. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_u64(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static double rng_unit(void) { return (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0); }
static int rng_int(int n) { return (int)(rng_u64() % (uint64_t)n); }

/* cmocka 1.1 has no assert_double_equal. */
#define assert_near(got, want, tol)                                                                \
    do {                                                                                           \
        double got_ = (got), want_ = (want);                                                       \
        if (!(fabs(got_ - want_) <= (tol)))                                                        \
            fail_msg("%s = %.17g, want %.17g", #got, got_, want_);                                 \
    } while (0)

/* The reference for one value: snprintf, without the '-' of a value that rounds to zero. */
static void reference_value(char *out, size_t size, double x, int decimals) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%.*f", decimals, x);
    const char *s = tmp;
    if (tmp[0] == '-' && isfinite(x) && strspn(tmp + 1, "0.") == strlen(tmp + 1)) s++;
    size_t n = strlen(s) < size ? strlen(s) : size - 1; /* copied by hand: snprintf warns at -O3 */
    memcpy(out, s, n);
    out[n] = '\0';
}

static char *encode_or_fail(double alpha, int decimals, const float *v, int steps, int vars, size_t *len) {
    ls_llmtime enc = {alpha, decimals};
    char *text = ls_llmtime_encode(&enc, v, steps, vars, len);
    assert_non_null(text);
    return text;
}

/* ---------------------------------------------------------------------------------------- */
/* encode                                                                                   */

static void test_encode_real_prefix(void **state) {
    (void)state;
    const char *path = shared_path("data/lotka_volterra_data.h5");
    ls_dataset ds;
    assert_int_equal(ls_dataset_read(path, &ds), LS_OK);
    assert_true(ds.systems >= 1 && ds.steps >= 3);
    size_t len;
    char *text = encode_or_fail(0.5, 3, ds.traj, ds.steps, LS_LV_VARS, &len);
    const char *want = "1.900,2.081;1.481,1.559;1.364,1.129;";
    assert_true(len >= strlen(want));
    assert_memory_equal(text, want, strlen(want));
    assert_int_equal(strlen(text), len);
    assert_int_equal(text[len - 1], ';');
    free(text);
    ls_dataset_free(&ds);
}

static void test_encode_basic(void **state) {
    (void)state;
    static const struct {
        float v[2];
        double alpha;
        int decimals;
        const char *want;
    } cases[] = {
        {{0.5f, 1.25f}, 1.0, 3, "0.500,1.250;"},
        {{0.949917f, 1.04062f}, 0.5, 3, "1.900,2.081;"},
        {{-0.0f, 0.0f}, 1.0, 3, "0.000,0.000;"},        /* negative zero */
        {{-0.0001f, -0.0004f}, 1.0, 3, "0.000,0.000;"}, /* rounds to zero: no sign */
        {{-0.0006f, -1.5f}, 1.0, 3, "-0.001,-1.500;"},
        {{2.4f, 2.6f}, 1.0, 0, "2,3;"},
        {{123456.0f, 7.0f}, 0.001, 2, "123456000.00,7000.00;"},
        {{1.0f, 2.0f}, 3.0, 8, "0.33333333,0.66666667;"},
        {{1e30f, 1.0f}, 1.0, 1, NULL}, /* the slow path: compared with snprintf below */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *text = encode_or_fail(cases[i].alpha, cases[i].decimals, cases[i].v, 1, 2, &len);
        char want[1100];
        if (cases[i].want) {
            snprintf(want, sizeof want, "%s", cases[i].want);
        } else {
            char a[512], b[512];
            reference_value(a, sizeof a, (double)cases[i].v[0] / cases[i].alpha, cases[i].decimals);
            reference_value(b, sizeof b, (double)cases[i].v[1] / cases[i].alpha, cases[i].decimals);
            snprintf(want, sizeof want, "%s,%s;", a, b);
        }
        assert_string_equal(text, want);
        assert_int_equal(len, strlen(want));
        free(text);
    }
    /* Exact binary ties follow snprintf (glibc: round half to even): 0.0625 -> 0.062. */
    float ties[4] = {0.0625f, 0.1875f, 2.5f, 3.5f};
    char *text = encode_or_fail(1.0, 3, ties, 2, 2, NULL);
    char want[300], a[64], b[64], c[64], d[64];
    reference_value(a, sizeof a, 0.0625, 3);
    reference_value(b, sizeof b, 0.1875, 3);
    reference_value(c, sizeof c, 2.5, 3);
    reference_value(d, sizeof d, 3.5, 3);
    snprintf(want, sizeof want, "%s,%s;%s,%s;", a, b, c, d);
    assert_string_equal(text, want);
    free(text);
    text = encode_or_fail(1.0, 0, ties + 2, 1, 2, NULL);
    reference_value(c, sizeof c, 2.5, 0);
    reference_value(d, sizeof d, 3.5, 0);
    snprintf(want, sizeof want, "%s,%s;", c, d);
    assert_string_equal(text, want);
    free(text);
    /* NaN and infinities print as snprintf does, and so decode as dropped steps. */
    float odd[2] = {NAN, INFINITY};
    text = encode_or_fail(1.0, 2, odd, 1, 2, NULL);
    assert_string_equal(text, "nan,inf;");
    free(text);
    /* Zero steps: the empty string. */
    size_t len = 99;
    text = encode_or_fail(1.0, 3, NULL, 0, 2, &len);
    assert_string_equal(text, "");
    assert_int_equal(len, 0);
    free(text);
}

static void test_encode_rejects_bad_settings(void **state) {
    (void)state;
    float v[2] = {1, 2};
    ls_llmtime bad[] = {{0.0, 3}, {-1.0, 3}, {NAN, 3}, {INFINITY, 3}, {1.0, -1}, {1.0, 9}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(ls_llmtime_encode(&bad[i], v, 1, 2, NULL));
        assert_true(strlen(ls_last_error()) > 0);
    }
    ls_llmtime ok = {1.0, 3};
    assert_null(ls_llmtime_encode(&ok, v, 1, 0, NULL));
    assert_null(ls_llmtime_encode(&ok, v, -1, 2, NULL));
    assert_null(ls_llmtime_encode(NULL, v, 1, 2, NULL));
}

/* The fast path against snprintf, byte for byte, for every decimals and many magnitudes,
 * including values built to sit on or next to a rounding tie. */
static void test_encode_matches_snprintf(void **state) {
    (void)state;
    enum { N = 20000 };
    float *v = malloc(N * sizeof *v);
    char *want = malloc((size_t)N * 400);
    assert_non_null(v);
    assert_non_null(want);
    for (int round = 0; round < 40; round++) {
        int decimals = round % (LS_LLMTIME_MAX_DECIMALS + 1);
        double alpha = round < 20 ? 1.0 : exp((rng_unit() - 0.5) * 10.0);
        for (int i = 0; i < N; i++) {
            switch (rng_int(5)) {
            case 0: v[i] = (float)(rng_unit() * 20.0); break;
            case 1: v[i] = (float)((rng_unit() - 0.5) * pow(10.0, rng_int(24) - 12)); break;
            case 2: /* a multiple of 2^-m: an exact binary tie at some decimals */
                v[i] = (float)((double)rng_int(1 << 20) / (double)(1u << rng_int(20)));
                break;
            case 3: { /* a decimal tie k + 0.5 units, nudged by a few float ulps */
                double unit = pow(10.0, -decimals);
                double x = ((double)rng_int(100000) + 0.5) * unit * alpha;
                float f = (float)x;
                for (int k = rng_int(5) - 2; k > 0; k--) f = nextafterf(f, INFINITY);
                for (int k = rng_int(5) - 2; k > 0; k--) f = nextafterf(f, -INFINITY);
                v[i] = rng_int(2) ? f : -f;
                break;
            }
            default: v[i] = (float)(rng_int(2000) - 1000) * 0.001f; break;
            }
        }
        size_t pos = 0;
        for (int i = 0; i < N; i++) {
            reference_value(want + pos, 400, (double)v[i] / alpha, decimals);
            pos += strlen(want + pos);
            want[pos++] = (i % 2 == 0) ? ',' : ';';
        }
        want[pos] = '\0';
        size_t len;
        char *text = encode_or_fail(alpha, decimals, v, N / 2, 2, &len);
        if (len != pos || memcmp(text, want, pos) != 0) {
            size_t k = 0;
            while (k < len && k < pos && text[k] == want[k]) k++;
            size_t from = k > 30 ? k - 30 : 0;
            fail_msg("decimals %d alpha %.17g: differs at byte %zu: got '%.60s' want '%.60s'", decimals,
                     alpha, k, text + from, want + from);
        }
        free(text);
    }
    free(v);
    free(want);
}

static void test_encode_speed_real(void **state) {
    (void)state;
    const char *path = shared_path("data/lotka_volterra_data.h5");
    ls_dataset ds;
    assert_int_equal(ls_dataset_read(path, &ds), LS_OK);
    ls_llmtime enc = {0.5, 3};
    double best = 1e9;
    size_t total = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = ls_now();
        total = 0;
        for (int s = 0; s < ds.systems; s++) {
            size_t len;
            char *text = ls_llmtime_encode(&enc, ds.traj + (size_t)s * ds.steps * LS_LV_VARS, ds.steps,
                                           LS_LV_VARS, &len);
            total += len;
            free(text);
        }
        double t = ls_now() - t0;
        if (t < best) best = t;
    }
    print_message("encode: %d systems x %d steps x 2 -> %zu bytes in %.2f ms\n", ds.systems, ds.steps,
                  total, best * 1e3);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__OPTIMIZE_SIZE__)
    assert_true(best < 0.1);
#endif
    /* decoding the whole set as one text, for the record */
    size_t len;
    char *text = ls_llmtime_encode(&enc, ds.traj, ds.systems * ds.steps, LS_LV_VARS, &len);
    assert_non_null(text);
    double t0 = ls_now();
    ls_llmtime_decoded d = ls_llmtime_decode(&enc, text, len, LS_LV_VARS, 0);
    print_message("decode: %zu bytes -> %d steps in %.2f ms\n", len, d.steps, (ls_now() - t0) * 1e3);
    assert_int_equal(d.steps, ds.systems * ds.steps);
    ls_llmtime_decoded_free(&d);
    free(text);
    ls_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------------------- */
/* round trips                                                                              */

/* |decoded - v| / alpha within half a unit of the last decimal (plus float storage error). */
static void check_roundtrip(const float *v, int steps, int vars, double alpha, int decimals) {
    size_t len;
    char *text = encode_or_fail(alpha, decimals, v, steps, vars, &len);
    ls_llmtime enc = {alpha, decimals};
    ls_llmtime_decoded d = ls_llmtime_decode(&enc, text, len, vars, 0);
    assert_int_equal(d.steps, steps);
    assert_int_equal(d.dropped, 0);
    double half = 0.5 * pow(10.0, -decimals);
    for (int i = 0; i < steps * vars; i++) {
        double want = (double)v[i] / alpha, got = (double)d.values[i] / alpha;
        double tol = half * (1 + 1e-9) + 2.0 * ldexp(fabs(want) + half, -24) + 1e-300;
        if (!(fabs(got - want) <= tol))
            fail_msg("value %d: %.9g / %.9g = %.12g came back as %.12g (decimals %d, tol %.3g)", i,
                     (double)v[i], alpha, want, got, decimals, tol);
    }
    ls_llmtime_decoded_free(&d);
    free(text);
}

static void test_roundtrip_random(void **state) {
    (void)state;
    for (int round = 0; round < 300; round++) {
        int steps = 1 + rng_int(200), vars = 1 + rng_int(3);
        int decimals = rng_int(LS_LLMTIME_MAX_DECIMALS + 1);
        double alpha = exp((rng_unit() - 0.5) * 6.0);
        float *v = malloc((size_t)steps * vars * sizeof *v);
        assert_non_null(v);
        double scale = pow(10.0, rng_int(5) - 2);
        for (int i = 0; i < steps * vars; i++) v[i] = (float)((rng_unit() - 0.1) * scale);
        check_roundtrip(v, steps, vars, alpha, decimals);
        free(v);
    }
}

static void test_roundtrip_real(void **state) {
    (void)state;
    const char *path = shared_path("data/lotka_volterra_data.h5");
    ls_dataset ds;
    assert_int_equal(ls_dataset_read(path, &ds), LS_OK);
    size_t total = (size_t)ds.systems * ds.steps * LS_LV_VARS;
    double auto_alpha = ls_llmtime_auto_alpha(ds.traj, total, 99, 10);
    print_message("auto alpha of the real set (99th percentile / 10): %.9g\n", auto_alpha);
    const double alphas[2] = {0.5, auto_alpha};
    for (int a = 0; a < 2; a++)
        for (int s = 0; s < ds.systems; s++)
            check_roundtrip(ds.traj + (size_t)s * ds.steps * LS_LV_VARS, ds.steps, LS_LV_VARS, alphas[a], 3);
    /* The whole set as one text, too. */
    check_roundtrip(ds.traj, ds.systems * ds.steps, LS_LV_VARS, 0.5, 3);
    ls_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------------------- */
/* decode: one case per malformed pattern                                                   */

typedef struct {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int vars, max_steps;
    int steps, dropped;
    float values[6]; /* the first kept values (alpha 0.5 applied) */
} decode_case;

static void test_decode_cases(void **state) {
    (void)state;
    static const decode_case cases[] = {
        /* well formed */
        {"1.900,2.081;1.481,1.559;", 0, 2, 0, 2, 0, {0.95f, 1.0405f, 0.7405f, 0.7795f}},
        {"1,2;3,4;5,6;", 0, 2, 0, 3, 0, {0.5f, 1, 1.5f, 2, 2.5f, 3}},
        {"1;2;3;", 0, 1, 0, 3, 0, {0.5f, 1, 1.5f}},
        {"-1.5,0.000;", 0, 2, 0, 1, 0, {-0.75f, 0}},
        {"-0.000,2;", 0, 2, 0, 1, 0, {0, 1}},
        /* truncated numbers */
        {"1.9,2;", 0, 2, 0, 1, 0, {0.95f, 1}},
        {"1.,2.0;", 0, 2, 0, 0, 1, {0}},
        {".5,2.0;", 0, 2, 0, 0, 1, {0}},
        {"1.5,-;", 0, 2, 0, 0, 1, {0}},
        {"1.5,-.5;", 0, 2, 0, 0, 1, {0}},
        /* other number forms are not numbers here */
        {"+1,2;", 0, 2, 0, 0, 1, {0}},
        {"1e3,2;", 0, 2, 0, 0, 1, {0}},
        {"0x10,2;", 0, 2, 0, 0, 1, {0}},
        {"1,2.5.5;", 0, 2, 0, 0, 1, {0}},
        {"--1,2;", 0, 2, 0, 0, 1, {0}},
        {"nan,2;inf,3;", 0, 2, 0, 0, 2, {0}},
        /* missing or extra fields */
        {"1.900;", 0, 2, 0, 0, 1, {0}},
        {"1,2,3;4,5;", 0, 2, 0, 1, 1, {2, 2.5f}},
        {"1,2,;", 0, 2, 0, 0, 1, {0}},
        {",1,2;", 0, 2, 0, 0, 1, {0}},
        {"1,,2;", 0, 2, 0, 0, 1, {0}},
        {",;", 0, 2, 0, 0, 1, {0}},
        /* empty steps */
        {";", 0, 2, 0, 0, 1, {0}},
        {"1,2;;3,4;", 0, 2, 0, 2, 1, {0.5f, 1, 1.5f, 2}},
        {";;;", 0, 2, 0, 0, 3, {0}},
        {";1,2;", 0, 2, 0, 1, 1, {0.5f, 1}},
        {"1,2; ;", 0, 2, 0, 1, 1, {0.5f, 1}},
        /* white space around fields is fine, inside a number is not */
        {" 1.5 , 2.5 ;", 0, 2, 0, 1, 0, {0.75f, 1.25f}},
        {"\t1.5,\r\n2.5\n;", 0, 2, 0, 1, 0, {0.75f, 1.25f}},
        {"1 .5,2;", 0, 2, 0, 0, 1, {0}},
        {"1,2 3;", 0, 2, 0, 0, 1, {0}},
        {"- 1,2;", 0, 2, 0, 0, 1, {0}},
        /* stray letters and bytes drop their step only */
        {"1a,2;3,4;", 0, 2, 0, 1, 1, {1.5f, 2}},
        {"1,2;x;3,4;", 0, 2, 0, 2, 1, {0.5f, 1, 1.5f, 2}},
        {"1,2;\xc3\xa9;3,4;", 0, 2, 0, 2, 1, {0.5f, 1, 1.5f, 2}},
        {"1,\0002;3,4;", 9, 2, 0, 1, 1, {1.5f, 2}}, /* a NUL byte inside the text */
        /* leading and trailing garbage */
        {"Sure! 1,2;3,4;", 0, 2, 0, 1, 1, {1.5f, 2}},
        {"1,2;3,4;<|endoftext|>", 0, 2, 0, 2, 1, {0.5f, 1, 1.5f, 2}},
        {"1,2;3,4;\n", 0, 2, 0, 2, 0, {0.5f, 1, 1.5f, 2}},
        {"1,2;3,4; \t\r\n ", 0, 2, 0, 2, 0, {0.5f, 1, 1.5f, 2}},
        /* the final step without ';' */
        {"1,2;3,4", 0, 2, 0, 2, 0, {0.5f, 1, 1.5f, 2}},
        {"1,2;3,4.5 ", 0, 2, 0, 2, 0, {0.5f, 1, 1.5f, 2.25f}},
        {"1,2;3,", 0, 2, 0, 1, 1, {0.5f, 1}},
        {"1,2;3", 0, 2, 0, 1, 1, {0.5f, 1}},
        {"1,2;3,4.", 0, 2, 0, 1, 1, {0.5f, 1}},
        {"1,2;-", 0, 2, 0, 1, 1, {0.5f, 1}},
        /* absurd lengths: at most 18 digits */
        {"123456789012345678,1;", 0, 2, 0, 1, 0, {61728394506172839.0f, 0.5f}},
        {"0.00000000000000001,1;", 0, 2, 0, 1, 0, {0.5e-17f, 0.5f}},
        {"1234567890123456789,1;", 0, 2, 0, 0, 1, {0}},
        {"0.000000000000000001,1;", 0, 2, 0, 0, 1, {0}},
        {"000000000000000000001,1;2,2;", 0, 2, 0, 1, 1, {1, 1}},
        /* max_steps: kept steps stop there, and reading stops there */
        {"1,2;3,4;5,6;", 0, 2, 2, 2, 0, {0.5f, 1, 1.5f, 2}},
        {"x;1,2;3,4;5,6;", 0, 2, 2, 2, 1, {0.5f, 1, 1.5f, 2}},
        {"1,2;x;y;", 0, 2, 1, 1, 0, {0.5f, 1}},
        /* nothing */
        {"", 0, 2, 0, 0, 0, {0}},
        {"   ", 0, 2, 0, 0, 0, {0}},
        {"\n", 0, 2, 0, 0, 0, {0}},
        {"1,2;", 0, 0, 0, 0, 0, {0}}, /* vars < 1 */
        /* only len bytes are read */
        {"1,2;3,4;", 3, 2, 0, 1, 0, {0.5f, 1}},
        {"1,2;3,4;", 6, 2, 0, 1, 1, {0.5f, 1}},
    };
    ls_llmtime enc = {0.5, 3};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const decode_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        /* an exact-length copy without NUL, so ASan catches a read past len */
        char *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        memcpy(buf, c->text, len);
        ls_llmtime_decoded d = ls_llmtime_decode(&enc, buf, len, c->vars, c->max_steps);
        if (d.steps != c->steps || d.dropped != c->dropped)
            fail_msg("case %zu '%s': got %d steps %d dropped, want %d and %d", i, c->text, d.steps,
                     d.dropped, c->steps, c->dropped);
        int nv = c->steps * (c->vars > 0 ? c->vars : 0);
        if (nv > 6) nv = 6;
        if (c->steps == 0) assert_null(d.values);
        for (int k = 0; k < nv; k++)
            if (!(fabsf(d.values[k] - c->values[k]) <= 1e-6f * (1 + fabsf(c->values[k]))))
                fail_msg("case %zu '%s': value %d is %.9g, want %.9g", i, c->text, k, (double)d.values[k],
                         (double)c->values[k]);
        ls_llmtime_decoded_free(&d);
        free(buf);
    }
}

static void test_decode_odd_arguments(void **state) {
    (void)state;
    ls_llmtime_decoded d = ls_llmtime_decode(NULL, "1,2;", 4, 2, 0); /* no enc: alpha 1 */
    assert_int_equal(d.steps, 1);
    assert_true(d.values[0] == 1.0f && d.values[1] == 2.0f);
    ls_llmtime_decoded_free(&d);
    ls_llmtime bad = {0.0, 3};
    d = ls_llmtime_decode(&bad, "1,2;", 4, 2, 0);
    assert_int_equal(d.steps, 1);
    assert_true(d.values[0] == 1.0f);
    ls_llmtime_decoded_free(&d);
    d = ls_llmtime_decode(&bad, NULL, 10, 2, 0);
    assert_int_equal(d.steps + d.dropped, 0);
    ls_llmtime_decoded_free(&d);
    /* a value that overflows float once multiplied by alpha drops its step */
    ls_llmtime huge = {1e30, 3};
    d = ls_llmtime_decode(&huge, "999999999,1;1,1;", 16, 2, 0);
    assert_int_equal(d.steps, 1);
    assert_int_equal(d.dropped, 1);
    assert_true(d.values[0] == 1e30f);
    ls_llmtime_decoded_free(&d);
    ls_llmtime_decoded_free(NULL);
    /* a huge vars on a short text allocates nothing large and keeps nothing */
    ls_llmtime one = {1.0, 3};
    d = ls_llmtime_decode(&one, "1,2;", 4, 2147483647, 0);
    assert_int_equal(d.steps, 0);
    assert_int_equal(d.dropped, 1);
    ls_llmtime_decoded_free(&d);
    /* the tightest texts: every byte used ("1,2;3,4" keeps 2 steps in 7 bytes) */
    d = ls_llmtime_decode(&one, "1,2;3,4", 7, 2, 0);
    assert_int_equal(d.steps, 2);
    assert_true(d.values[3] == 4.0f);
    ls_llmtime_decoded_free(&d);
    d = ls_llmtime_decode(&one, "1;2;3;4;5", 9, 1, 0);
    assert_int_equal(d.steps, 5);
    assert_true(d.values[4] == 5.0f);
    ls_llmtime_decoded_free(&d);
    /* many variables in one step */
    {
        enum { V = 1000 };
        float wide[V];
        for (int i = 0; i < V; i++) wide[i] = (float)i;
        size_t wlen;
        char *wtext = encode_or_fail(1.0, 1, wide, 1, V, &wlen);
        d = ls_llmtime_decode(&one, wtext, wlen, V, 0);
        assert_int_equal(d.steps, 1);
        assert_true(d.values[V - 1] == (float)(V - 1));
        ls_llmtime_decoded_free(&d);
        d = ls_llmtime_decode(&one, wtext, wlen, V + 1, 0); /* one field short */
        assert_int_equal(d.steps, 0);
        ls_llmtime_decoded_free(&d);
        free(wtext);
    }
    /* a number of 100000 digits */
    size_t n = 100000;
    char *big = malloc(n + 4);
    assert_non_null(big);
    memset(big, '9', n);
    memcpy(big + n, ",1;", 3);
    ls_llmtime enc = {1.0, 3};
    d = ls_llmtime_decode(&enc, big, n + 3, 2, 0);
    assert_int_equal(d.steps, 0);
    assert_int_equal(d.dropped, 1);
    ls_llmtime_decoded_free(&d);
    free(big);
}

/* ---------------------------------------------------------------------------------------- */
/* decode: randomized robustness                                                            */

static int count_char(const char *s, size_t n, char c) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == c;
    return k;
}

/* Decode s[0..n) from an exact-length malloc'ed copy and check what must always hold. */
static ls_llmtime_decoded decode_exact(const ls_llmtime *enc, const char *s, size_t n, int vars, int max_steps) {
    char *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    if (n) memcpy(buf, s, n);
    ls_llmtime_decoded d = ls_llmtime_decode(enc, buf, n, vars, max_steps);
    free(buf);
    assert_true(d.steps >= 0 && d.dropped >= 0);
    assert_true(d.steps + d.dropped <= count_char(s, n, ';') + 1);
    if (max_steps > 0) assert_true(d.steps <= max_steps);
    for (int i = 0; i < d.steps * vars; i++) assert_true(isfinite(d.values[i]));
    return d;
}

static void test_decode_random_bytes(void **state) {
    (void)state;
    static const char alphabet[] = "0123456789.,;- \n";
    ls_llmtime enc = {0.5, 3};
    char s[512];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)rng_int(sizeof s);
        int mode = rng_int(3);
        for (size_t i = 0; i < n; i++) {
            if (mode == 0)
                s[i] = (char)rng_int(256); /* any byte */
            else if (mode == 1)
                s[i] = alphabet[rng_int((int)sizeof alphabet - 1)];
            else /* mostly digits, sometimes anything */
                s[i] = rng_int(10) ? alphabet[rng_int((int)sizeof alphabet - 1)] : (char)rng_int(256);
        }
        int vars = 1 + rng_int(3), max_steps = rng_int(4) ? 0 : rng_int(5);
        ls_llmtime_decoded d = decode_exact(&enc, s, n, vars, max_steps);
        ls_llmtime_decoded_free(&d);
    }
}

static void test_decode_mutations(void **state) {
    (void)state;
    enum { STEPS = 40 };
    float v[STEPS * 2];
    ls_llmtime enc = {0.5, 3};
    char *mut = malloc(4096);
    assert_non_null(mut);
    for (int round = 0; round < 5000; round++) {
        for (int i = 0; i < STEPS * 2; i++) v[i] = (float)(rng_unit() * 6.0);
        size_t len;
        char *text = encode_or_fail(enc.alpha, enc.decimals, v, STEPS, 2, &len);
        assert_true(len < 2048);

        /* a plain truncation keeps every complete step and drops at most the cut one */
        size_t cut = (size_t)rng_int((int)len + 1);
        ls_llmtime_decoded d = decode_exact(&enc, text, cut, 2, 0);
        int complete = count_char(text, cut, ';');
        assert_true(d.steps == complete || d.steps == complete + 1);
        assert_true(d.dropped <= 1);
        assert_int_equal(d.steps + d.dropped, complete + (cut > 0 && text[cut - 1] != ';'));
        for (int i = 0; i < complete * 2; i++) assert_true(fabsf(d.values[i] - v[i]) <= 0.5e-3f * 0.5f + 1e-6f);
        ls_llmtime_decoded_free(&d);

        /* random insertions, deletions, replacements and truncations */
        size_t n = len;
        memcpy(mut, text, len);
        int edits = 1 + rng_int(8);
        for (int e = 0; e < edits; e++) {
            int kind = rng_int(4);
            size_t at = n ? (size_t)rng_int((int)n) : 0;
            char byte = rng_int(2) ? (char)rng_int(256) : ",;.-0 9a\n"[rng_int(9)];
            if (kind == 0 && n < 4000) { /* insert */
                memmove(mut + at + 1, mut + at, n - at);
                mut[at] = byte;
                n++;
            } else if (kind == 1 && n > 0) { /* delete */
                memmove(mut + at, mut + at + 1, n - at - 1);
                n--;
            } else if (kind == 2 && n > 0) { /* replace */
                mut[at] = byte;
            } else { /* truncate */
                n = at;
            }
        }
        int max_steps = rng_int(3) ? 0 : 1 + rng_int(STEPS);
        d = decode_exact(&enc, mut, n, 2, max_steps);
        ls_llmtime_decoded_free(&d);
        free(text);
    }
    free(mut);
}

/* ---------------------------------------------------------------------------------------- */
/* auto alpha                                                                               */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile(|v|, pct) with the default linear interpolation, by sorting. */
static double reference_percentile(const float *v, size_t n, double pct) {
    double *a = malloc(n * sizeof *a);
    assert_non_null(a);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) a[m++] = fabs((double)v[i]);
    qsort(a, m, sizeof *a, cmp_double);
    double rank = pct / 100.0 * (double)(m - 1);
    size_t lo = (size_t)floor(rank);
    double hi = lo + 1 < m ? a[lo + 1] : a[lo];
    double r = a[lo] + (rank - (double)lo) * (hi - a[lo]);
    free(a);
    return r;
}

static void test_auto_alpha(void **state) {
    (void)state;
    const float five[5] = {3, 1, 5, 2, 4};
    /* by hand: sorted 1 2 3 4 5; pct 90 -> rank 0.9 * 4 = 3.6 -> 4 + 0.6 * (5 - 4) = 4.6 */
    assert_near(ls_llmtime_auto_alpha(five, 5, 90, 2), 2.3, 1e-12);
    assert_near(ls_llmtime_auto_alpha(five, 5, 50, 1), 3.0, 1e-12);
    assert_near(ls_llmtime_auto_alpha(five, 5, 25, 1), 2.0, 1e-12);
    /* pct 99 -> rank 3.96 -> 4.96 */
    assert_near(ls_llmtime_auto_alpha(five, 5, 99, 10), 0.496, 1e-12);
    assert_near(ls_llmtime_auto_alpha(five, 5, 100, 1), 5.0, 1e-12);
    assert_near(ls_llmtime_auto_alpha(five, 5, 0, 1), 1.0, 1e-12);
    assert_near(ls_llmtime_auto_alpha(five, 5, 150, 1), 5.0, 1e-12); /* pct clamped */
    assert_near(ls_llmtime_auto_alpha(five, 5, -3, 1), 1.0, 1e-12);
    assert_near(ls_llmtime_auto_alpha(five, 5, 100, 0), 5.0, 1e-12); /* target <= 0: 1 */
    /* ten values 0..9 (numpy: percentile(range(10), 99) = 8.91) */
    const float ten[10] = {9, 0, 8, 1, 7, 2, 6, 3, 5, 4};
    assert_near(ls_llmtime_auto_alpha(ten, 10, 99, 10), 0.891, 1e-12);
    /* negatives count by magnitude; non-finite values are ignored */
    const float mixed[6] = {-5, 1, NAN, 3, INFINITY, -2};
    assert_near(ls_llmtime_auto_alpha(mixed, 6, 50, 1), 2.5, 1e-12);
    /* one value; all zero (floor); none */
    const float one[1] = {7};
    assert_near(ls_llmtime_auto_alpha(one, 1, 99, 10), 0.7, 1e-12);
    const float zeros[4] = {0, 0, 0, 0};
    assert_near(ls_llmtime_auto_alpha(zeros, 4, 99, 10), 1e-12, 0);
    const float nans[2] = {NAN, NAN};
    assert_near(ls_llmtime_auto_alpha(nans, 2, 99, 10), 1.0, 0);
    assert_near(ls_llmtime_auto_alpha(NULL, 0, 99, 10), 1.0, 0);
    assert_true(ls_llmtime_auto_alpha(five, 5, NAN, 1) == 1.0); /* NaN pct: 0 */

    /* random arrays (with many ties) against sorting */
    for (int round = 0; round < 300; round++) {
        size_t n = 1 + (size_t)rng_int(3000);
        float *v = malloc(n * sizeof *v);
        assert_non_null(v);
        int ties = rng_int(2);
        for (size_t i = 0; i < n; i++) v[i] = ties ? (float)rng_int(10) : (float)(rng_unit() * 100.0 - 10.0);
        double pct = rng_int(3) ? rng_unit() * 100.0 : (double)rng_int(101);
        double target = 0.5 + rng_unit() * 10.0;
        double want = reference_percentile(v, n, pct) / target;
        if (want < 1e-12) want = 1e-12;
        double got = ls_llmtime_auto_alpha(v, n, pct, target);
        if (fabs(got - want) > 1e-12 * (1 + want))
            fail_msg("n %zu pct %.6f: got %.17g want %.17g", n, pct, got, want);
        free(v);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* windows                                                                                  */

static void test_windows_cases(void **state) {
    (void)state;
    static const struct {
        int n, ctx, stride;
        int count;
        int start[8], valid[8];
    } cases[] = {
        {0, 4, 2, 0, {0}, {0}},                                            /* empty */
        {1, 4, 2, 1, {0}, {1}},                                            /* n < ctx */
        {3, 4, 2, 1, {0}, {3}},                                            /* n < ctx */
        {4, 4, 2, 1, {0}, {4}},                                            /* n == ctx */
        {5, 4, 2, 2, {0, 2}, {4, 3}},                                      /* n == ctx + 1 */
        {5, 4, 4, 2, {0, 4}, {4, 1}},                                      /* n == ctx + 1, stride ctx */
        {5, 4, 1, 2, {0, 1}, {4, 4}},                                      /* stride 1 */
        {6, 4, 2, 2, {0, 2}, {4, 4}},                                      /* exact: 2 + 4 == 6 */
        {8, 4, 2, 3, {0, 2, 4}, {4, 4, 4}},                                /* exact multiple */
        {8, 4, 4, 2, {0, 4}, {4, 4}},                                      /* exact, no overlap */
        {9, 4, 4, 3, {0, 4, 8}, {4, 4, 1}},                                /* one token left */
        {10, 4, 0, 4, {0, 2, 4, 6}, {4, 4, 4, 4}},                         /* stride 0: ctx/2 */
        {11, 4, -1, 5, {0, 2, 4, 6, 8}, {4, 4, 4, 4, 3}},                  /* stride < 0: ctx/2 */
        {5, 3, 0, 3, {0, 1, 2}, {3, 3, 3}},                                /* ctx/2 = 1 */
        {4, 2, 0, 3, {0, 1, 2}, {2, 2, 2}},                                /* smallest ctx */
        {20, 6, 4, 5, {0, 4, 8, 12, 16}, {6, 6, 6, 6, 4}},                 /* not a multiple */
        {17, 5, 3, 5, {0, 3, 6, 9, 12}, {5, 5, 5, 5, 5}},                  /* 12 + 5 == 17 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ls_windows w;
        assert_int_equal(ls_windows_make(cases[i].n, cases[i].ctx, cases[i].stride, &w), LS_OK);
        if (w.count != cases[i].count)
            fail_msg("case %zu (n %d ctx %d stride %d): %d windows, want %d", i, cases[i].n, cases[i].ctx,
                     cases[i].stride, w.count, cases[i].count);
        for (int k = 0; k < w.count; k++) {
            assert_int_equal(w.start[k], cases[i].start[k]);
            assert_int_equal(w.valid[k], cases[i].valid[k]);
        }
        ls_windows_free(&w);
        assert_int_equal(w.count, 0);
    }
    ls_windows w;
    assert_int_equal(ls_windows_make(10, 1, 1, &w), LS_ERR); /* ctx < 2 */
    assert_int_equal(w.count, 0);
    assert_int_equal(ls_windows_make(10, 4, 5, &w), LS_ERR); /* stride > ctx */
    assert_non_null(strstr(ls_last_error(), "stride"));
    assert_int_equal(ls_windows_make(-1, 4, 2, &w), LS_ERR);
    ls_windows_free(&w);
    ls_windows_free(NULL);
}

/* Against a direct construction, and: with stride < ctx every token but the first is the
 * target of some window (a real token predicted from a real token). */
static void test_windows_random(void **state) {
    (void)state;
    for (int round = 0; round < 3000; round++) {
        int ctx = 2 + rng_int(30), n = rng_int(200), stride = rng_int(ctx + 1);
        int eff = stride > 0 ? stride : (ctx / 2 > 0 ? ctx / 2 : 1);
        ls_windows w;
        assert_int_equal(ls_windows_make(n, ctx, stride, &w), LS_OK);
        int count = 0;
        for (int s = 0; n > 0; s += eff) {
            assert_true(count < w.count);
            assert_int_equal(w.start[count], s);
            assert_int_equal(w.valid[count], n - s < ctx ? n - s : ctx);
            assert_true(w.valid[count] >= 1);
            count++;
            if (s + ctx >= n) break;
        }
        assert_int_equal(w.count, count);
        if (eff < ctx) {
            for (int t = 1; t < n; t++) {
                int covered = 0;
                for (int k = 0; k < w.count && !covered; k++)
                    covered = t > w.start[k] && t < w.start[k] + w.valid[k];
                if (!covered) fail_msg("n %d ctx %d stride %d: token %d is never a target", n, ctx, eff, t);
            }
        }
        ls_windows_free(&w);
    }
}

static void test_windows_fill(void **state) {
    (void)state;
    enum { N = 11, CTX = 4 };
    int32_t tokens[N];
    for (int i = 0; i < N; i++) tokens[i] = 100 + i;
    ls_windows w;
    assert_int_equal(ls_windows_make(N, CTX, 0, &w), LS_OK); /* starts 0 2 4 6 8 */
    assert_int_equal(w.count, 5);
    int32_t ids[CTX];
    uint8_t mask[CTX];
    ls_windows_fill(&w, 1, tokens, CTX, -7, ids, mask);
    const int32_t want1[CTX] = {102, 103, 104, 105};
    const uint8_t full[CTX] = {1, 1, 1, 1};
    assert_memory_equal(ids, want1, sizeof ids);
    assert_memory_equal(mask, full, sizeof mask);
    ls_windows_fill(&w, 4, tokens, CTX, -7, ids, mask); /* the last, padded: 108 109 110 pad */
    const int32_t want4[CTX] = {108, 109, 110, -7};
    const uint8_t mask4[CTX] = {1, 1, 1, 0};
    assert_memory_equal(ids, want4, sizeof ids);
    assert_memory_equal(mask, mask4, sizeof mask);
    assert_int_equal(ls_windows_targets(&w, 4), 2);
    assert_int_equal(ls_windows_targets(&w, 0), CTX - 1);
    assert_int_equal(ls_windows_targets(&w, 5), 0);
    ls_windows_fill(&w, 4, tokens, CTX, -7, ids, NULL); /* no mask */
    assert_memory_equal(ids, want4, sizeof ids);
    ls_windows_fill(&w, 9, tokens, CTX, -7, ids, mask); /* out of range: all padding */
    for (int i = 0; i < CTX; i++) assert_true(ids[i] == -7 && mask[i] == 0);
    ls_windows_free(&w);

    /* a short sequence: one window, mostly padding, exact-length token buffer for ASan */
    int32_t *few = malloc(2 * sizeof *few);
    assert_non_null(few);
    few[0] = 5, few[1] = 6;
    assert_int_equal(ls_windows_make(2, 8, 0, &w), LS_OK);
    assert_int_equal(w.count, 1);
    int32_t ids8[8];
    uint8_t mask8[8];
    ls_windows_fill(&w, 0, few, 8, 0, ids8, mask8);
    const int32_t want8[8] = {5, 6, 0, 0, 0, 0, 0, 0};
    const uint8_t m8[8] = {1, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(ids8, want8, sizeof ids8);
    assert_memory_equal(mask8, m8, sizeof mask8);
    assert_int_equal(ls_windows_targets(&w, 0), 1);
    ls_windows_free(&w);
    free(few);
    /* a window of one real token has no target */
    assert_int_equal(ls_windows_make(9, 4, 4, &w), LS_OK);
    assert_int_equal(ls_windows_targets(&w, 2), 0);
    ls_windows_free(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_basic),
        cmocka_unit_test(test_encode_rejects_bad_settings),
        cmocka_unit_test(test_encode_matches_snprintf),
        cmocka_unit_test(test_encode_real_prefix),
        cmocka_unit_test(test_encode_speed_real),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_roundtrip_real),
        cmocka_unit_test(test_decode_cases),
        cmocka_unit_test(test_decode_odd_arguments),
        cmocka_unit_test(test_decode_random_bytes),
        cmocka_unit_test(test_decode_mutations),
        cmocka_unit_test(test_auto_alpha),
        cmocka_unit_test(test_windows_cases),
        cmocka_unit_test(test_windows_random),
        cmocka_unit_test(test_windows_fill),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
