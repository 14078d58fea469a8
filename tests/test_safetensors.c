/*
 * test_safetensors.c: half-precision conversions (against independent references), the writer
 * -> reader round trip, one broken file per check with its one-line message, and a mutation fuzz
 * of headers parsed from exactly-sized buffers (run it under the sanitizer build).
 */
#include <math.h>

#include "lorasweep/common.h"
#include "lorasweep/safetensors.h"
#include "testing.h"

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_u64(void) { /* xorshift64 */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ---------------------------------------------------------------- conversions */

/* bfloat16 rounding done the slow way: the two neighbours in double, nearer wins, ties to even. */
static uint16_t bf16_reference(float f) {
    uint16_t lo = (uint16_t)(bits(f) >> 16), hi = (uint16_t)(lo + 1); /* toward zero, away from zero */
    double dlo = ls_bf16_to_f32(lo);
    /* above the largest finite bfloat16 the upper neighbour is 2^128, i.e. infinity */
    double dhi = (lo & 0x7fffu) == 0x7f7fu ? (signbit(f) ? -1 : 1) * ldexp(1.0, 128) : ls_bf16_to_f32(hi);
    double elo = fabs((double)f - dlo), ehi = fabs(dhi - (double)f);
    if (elo != ehi) return elo < ehi ? lo : hi;
    return (lo & 1u) ? hi : lo;
}

static void test_bf16(void **state) {
    assert_int_equal(ls_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(ls_f32_to_bf16(from_bits(0x3f808000)), 0x3f80); /* tie, even stays */
    assert_int_equal(ls_f32_to_bf16(from_bits(0x3f818000)), 0x3f82); /* tie, odd goes up to even */
    assert_int_equal(ls_f32_to_bf16(from_bits(0x3f808001)), 0x3f81);
    assert_int_equal(ls_f32_to_bf16(from_bits(0xbf808001)), 0xbf81);
    assert_int_equal(ls_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(ls_f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(ls_f32_to_bf16(from_bits(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to infinity */
    assert_true(isnan(ls_bf16_to_f32(ls_f32_to_bf16(NAN))));
    assert_true(isnan(ls_bf16_to_f32(ls_f32_to_bf16(from_bits(0x7f800001))))); /* payload only in low bits */
    assert_int_equal(ls_f32_to_bf16(from_bits(0x00000001)), 0x0000);      /* subnormals round too */
    assert_int_equal(ls_f32_to_bf16(from_bits(0x00008000)), 0x0000);
    assert_int_equal(ls_f32_to_bf16(from_bits(0x00018000)), 0x0002);
    assert_true(ls_bf16_to_f32(0x3f80) == 1.0f && ls_bf16_to_f32(0xc000) == -2.0f);
    for (uint32_t h = 0; h < 65536; h++) { /* every bfloat16 survives the trip */
        float f = ls_bf16_to_f32((uint16_t)h);
        if (!isnan(f)) assert_int_equal(ls_f32_to_bf16(f), h);
    }
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)next_u64();
        if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u; /* exact ties */
        float f = from_bits(u);
        if (!isfinite(f)) continue;
        if (ls_f32_to_bf16(f) != bf16_reference(f)) fail_msg("bf16 of %08x: %04x, expected %04x", u, ls_f32_to_bf16(f), bf16_reference(f));
    }
}

static void test_f16(void **state) {
    assert_true(ls_f16_to_f32(0x0001) == ldexpf(1, -24)); /* smallest subnormal */
    assert_true(ls_f16_to_f32(0x03ff) == 1023 * ldexpf(1, -24));
    assert_true(ls_f16_to_f32(0x0400) == ldexpf(1, -14));
    assert_true(ls_f16_to_f32(0x8001) == -ldexpf(1, -24));
    assert_true(ls_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(ls_f16_to_f32(0x3c00) == 1.0f && ls_f16_to_f32(0xc000) == -2.0f);
    assert_true(isinf(ls_f16_to_f32(0x7c00)) && ls_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(ls_f16_to_f32(0x7e00)) && isnan(ls_f16_to_f32(0x7c01)));
    assert_true(bits(ls_f16_to_f32(0x8000)) == 0x80000000u); /* -0 */
    assert_int_equal(ls_f32_to_f16(ldexpf(1, -25)), 0x0000);        /* tie between 0 and 2^-24: even */
    assert_int_equal(ls_f32_to_f16(ldexpf(1.0000001f, -25)), 0x0001);
    assert_int_equal(ls_f32_to_f16(3 * ldexpf(1, -25)), 0x0002);    /* 1.5 units: tie, to even 2 */
    assert_int_equal(ls_f32_to_f16(5 * ldexpf(1, -25)), 0x0002);    /* 2.5 units: tie, to even 2 */
    assert_int_equal(ls_f32_to_f16(ldexpf(1023.5f, -24)), 0x0400);  /* rounds up into the normals */
    assert_int_equal(ls_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(ls_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(ls_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(ls_f32_to_f16(1e-10f), 0x0000);
    assert_int_equal(ls_f32_to_f16(-1e-10f), 0x8000);
    assert_int_equal(ls_f32_to_f16(from_bits(0x3f801000)), 0x3c00); /* 1 + 2^-11: tie, even */
    assert_int_equal(ls_f32_to_f16(from_bits(0x3f803000)), 0x3c02); /* 1 + 3*2^-11: tie, up to even */
    assert_true(isnan(ls_f16_to_f32(ls_f32_to_f16(NAN))));
    assert_true(isnan(ls_f16_to_f32(ls_f32_to_f16(from_bits(0x7f800001)))));
    for (uint32_t h = 0; h < 65536; h++) { /* every half, subnormals included, survives the trip */
        float f = ls_f16_to_f32((uint16_t)h);
        if (!isnan(f)) assert_int_equal(ls_f32_to_f16(f), h);
    }
#ifdef __FLT16_MAX__
    /* the compiler's own conversions as an independent reference */
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 x;
        uint16_t hh = (uint16_t)h;
        memcpy(&x, &hh, 2);
        float want = (float)x, got = ls_f16_to_f32(hh);
        if (!(isnan(want) ? isnan(got) : bits(want) == bits(got))) fail_msg("f16 %04x -> %g, expected %g", h, got, want);
    }
    for (int i = 0; i < 300000; i++) {
        uint32_t u = (uint32_t)next_u64();
        /* concentrate on the half range: exponents around 2^-26 .. 2^17 */
        u = (u & 0x807fffffu) | ((uint32_t)(101 + (next_u64() % 44)) << 23);
        if (i % 3 == 0) u &= 0xffffe000u | 0x1000u; /* ties of normal halves */
        float f = from_bits(u);
        _Float16 x = (_Float16)f;
        uint16_t want;
        memcpy(&want, &x, 2);
        if (ls_f32_to_f16(f) != want) fail_msg("f16 of %08x (%g): %04x, expected %04x", u, f, ls_f32_to_f16(f), want);
    }
#else
    print_message("no _Float16 in this compiler: reference comparison skipped\n");
#endif
}

/* ---------------------------------------------------------------- round trip */

static void fill_ramp(void *ctx, float *out, uint64_t start, size_t count) {
    const float *scale = ctx;
    for (size_t i = 0; i < count; i++) out[i] = *scale * (float)(start + i) - 1000.0f;
}

static void test_round_trip(void **state) {
    enum { N = 6 * 7 };
    float values[N], ramp_scale = 0.01f;
    for (int i = 0; i < N; i++) values[i] = (float)sin(i * 1.3) * powf(10.0f, (float)(i % 9) - 6.0f);
    values[5] = from_bits(0x3f808000); /* a bf16 tie */
    values[6] = ldexpf(3, -25);        /* an f16 subnormal tie */
    values[7] = -0.0f;
    values[8] = INFINITY;
    float scalar = 3.25f;
    ls_st_write w[6] = {
        {.name = "a.f32", .dtype = LS_ST_F32, .rank = 2, .shape = {6, 7}, .data = values},
        {.name = "b.bf16", .dtype = LS_ST_BF16, .rank = 2, .shape = {7, 6}, .data = values},
        {.name = "c.f16", .dtype = LS_ST_F16, .rank = 3, .shape = {2, 3, 7}, .data = values},
        {.name = "d.scalar", .dtype = LS_ST_F32, .rank = 0, .data = &scalar},
        {.name = "e.empty", .dtype = LS_ST_BF16, .rank = 2, .shape = {0, 5}},
        {.name = "f \"quoted\\name\"", .dtype = LS_ST_BF16, .rank = 1, .shape = {200003}, .fill = fill_ramp,
         .ctx = &ramp_scale},
    };
    ls_st_meta meta[] = {{"format", "pt"}, {"note", "line\nbreak \"quoted\" é"}};
    char path[512];
    snprintf(path, sizeof path, "%s/round.safetensors", temp_dir());
    if (ls_safetensors_write(path, w, 6, meta, 2) != LS_OK) fail_msg("%s", ls_last_error());
    size_t size;
    char *file = ls_read_file(path, &size);
    assert_non_null(file);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | (uint8_t)file[i];
    assert_int_equal((8 + hlen) % 8, 0);  /* padded as the reference writer pads */
    assert_int_equal(file[8], '{');
    assert_int_equal(file[8 + hlen - 1], hlen % 8 ? ' ' : file[8 + hlen - 1]);
    free(file);

    ls_safetensors st;
    if (ls_safetensors_open(path, &st) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(st.n_tensors, 6);
    assert_string_equal(ls_safetensors_meta(&st, "format"), "pt");
    assert_string_equal(ls_safetensors_meta(&st, "note"), "line\nbreak \"quoted\" é");
    assert_null(ls_safetensors_meta(&st, "none"));
    float got[N];
    const ls_st_tensor *t = ls_safetensors_find(&st, "a.f32");
    assert_non_null(t);
    assert_int_equal(t->dtype, LS_ST_F32);
    assert_int_equal(t->rank, 2);
    assert_int_equal(t->shape[0], 6);
    assert_int_equal(t->shape[1], 7);
    assert_int_equal(ls_safetensors_read_f32(&st, t, got), LS_OK);
    assert_memory_equal(got, values, sizeof values);
    t = ls_safetensors_find(&st, "b.bf16");
    assert_int_equal(t->dtype, LS_ST_BF16);
    assert_int_equal(t->end - t->begin, N * 2);
    assert_int_equal(ls_safetensors_read_f32(&st, t, got), LS_OK);
    for (int i = 0; i < N; i++) assert_int_equal(bits(got[i]), bits(ls_bf16_to_f32(ls_f32_to_bf16(values[i]))));
    assert_true(got[5] == 1.0f); /* the tie went to even */
    t = ls_safetensors_find(&st, "c.f16");
    assert_int_equal(t->rank, 3);
    assert_int_equal(ls_safetensors_read_f32(&st, t, got), LS_OK);
    for (int i = 0; i < N; i++) assert_int_equal(bits(got[i]), bits(ls_f16_to_f32(ls_f32_to_f16(values[i]))));
    assert_true(got[6] == ldexpf(2, -24));
    t = ls_safetensors_find(&st, "d.scalar");
    assert_int_equal(t->rank, 0);
    assert_int_equal(t->numel, 1);
    assert_int_equal(ls_safetensors_read_f32(&st, t, got), LS_OK);
    assert_true(got[0] == 3.25f);
    t = ls_safetensors_find(&st, "e.empty");
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->begin, t->end);
    t = ls_safetensors_find(&st, "f \"quoted\\name\"");
    assert_non_null(t);
    float *big = malloc(200003 * sizeof(float));
    assert_int_equal(ls_safetensors_read_f32(&st, t, big), LS_OK);
    for (size_t i = 0; i < 200003; i++) {
        float v = 0.01f * (float)i - 1000.0f;
        if (bits(big[i]) != bits(ls_bf16_to_f32(ls_f32_to_bf16(v)))) fail_msg("fill value %zu", i);
    }
    free(big);
    assert_null(ls_safetensors_find(&st, "a"));
    assert_null(ls_safetensors_find(&st, "zzz"));
    ls_safetensors_close(&st);

    /* writer refusals: message names the path, and the old file stays */
    ls_st_write dup[2] = {w[0], w[0]};
    assert_int_equal(ls_safetensors_write(path, dup, 2, NULL, 0), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "given twice"));
    ls_st_write bad = w[0];
    bad.dtype = LS_ST_I32;
    assert_int_equal(ls_safetensors_write(path, &bad, 1, NULL, 0), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "cannot store as I32"));
    bad = w[0];
    bad.shape[1] = -1;
    assert_int_equal(ls_safetensors_write(path, &bad, 1, NULL, 0), LS_ERR);
    assert_int_equal(ls_safetensors_write("/nonexistent/dir/x.safetensors", w, 1, NULL, 0), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "/nonexistent/dir/x.safetensors"));
    assert_int_equal(ls_safetensors_open(path, &st), LS_OK);
    assert_int_equal(st.n_tensors, 6);
    ls_safetensors_close(&st);
}

/* ---------------------------------------------------------------- broken files */

/* A file made of an 8-byte length (hlen, or the header's own length when UINT64_MAX), the
 * header text and data_len bytes of data; malloc'ed to exactly its size. */
static uint8_t *make_file(const char *header, uint64_t hlen, size_t data_len, size_t *size) {
    size_t n = strlen(header);
    if (hlen == UINT64_MAX) hlen = n;
    *size = 8 + n + data_len;
    uint8_t *buf = malloc(*size);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, header, n);
    for (size_t i = 0; i < data_len; i++) buf[8 + n + i] = (uint8_t)(i * 7);
    return buf;
}

static void expect_broken(const char *header, uint64_t hlen, size_t data_len, const char *message) {
    size_t size;
    uint8_t *buf = make_file(header, hlen, data_len, &size);
    ls_safetensors st;
    int rc = ls_safetensors_parse(buf, size, "bad.safetensors", &st);
    const char *msg = ls_last_error();
    if (rc != LS_ERR) fail_msg("accepted a broken file (expected '%s'): %s", message, header);
    if (strncmp(msg, "bad.safetensors: ", 17) != 0 || !strstr(msg, message) || strchr(msg, '\n'))
        fail_msg("expected '%s', got '%s' for %s", message, msg, header);
    assert_int_equal(st.n_tensors, 0); /* closed on failure */
    free(buf);
}

#define T1 "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"
#define T2 "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]}"

static void test_broken_files(void **state) {
    size_t size;
    uint8_t *ok = make_file("{" T1 "," T2 "}", UINT64_MAX, 24, &size);
    ls_safetensors st;
    if (ls_safetensors_parse(ok, size, "good", &st) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(st.n_tensors, 2);
    ls_safetensors_close(&st);
    free(ok);

    expect_broken("{" T1 "," T2 "}", 1000, 24, "runs past the end of the file");
    expect_broken("{" T1 "," T2 "}", 200000000, 24, "above the 100000000-byte limit");
    expect_broken("{" T1 "," T2 "}", UINT64_MAX - 1, 24, "above the");
    expect_broken("[1,2]", UINT64_MAX, 0, "does not start with a JSON object");
    expect_broken("{\"a\":", UINT64_MAX, 0, "not a valid JSON object");
    expect_broken("{" T1 "} x", UINT64_MAX, 16, "bytes after its JSON object");
    expect_broken("{" T1 "}\xff ", UINT64_MAX, 16, "UTF-8");
    expect_broken("{\"a\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,4]}}", UINT64_MAX, 4, "unknown dtype 'F12'");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", UINT64_MAX, 16,
                  "16 bytes in data_offsets, but shape [2, 3] of F32 needs 24");
    expect_broken("{" T1 ",\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[12,20]}}", UINT64_MAX, 20,
                  "overlaps tensor 'a'");
    expect_broken("{" T1 ",\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[20,28]}}", UINT64_MAX, 28, "gap");
    expect_broken("{" T1 "," T2 "}", UINT64_MAX, 20, "beyond the data section (20 bytes; truncated file?)");
    expect_broken("{" T1 "," T2 "}", UINT64_MAX, 30, "trailing bytes");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", UINT64_MAX, 8, "before begin");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", UINT64_MAX, 4, "shape[0]");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", UINT64_MAX, 4, "shape[0]");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", UINT64_MAX, 4,
                  "rank 9");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}",
                  UINT64_MAX, 4, "overflows");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", UINT64_MAX, 4, "data_offsets");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", UINT64_MAX, 4, "data_offsets");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", UINT64_MAX, 4, "data_offsets");
    expect_broken("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", UINT64_MAX, 4, "dtype");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", UINT64_MAX, 4, "shape");
    expect_broken("{\"a\":[1]}", UINT64_MAX, 0, "not an object");
    expect_broken("{" T1 "," T1 "}", UINT64_MAX, 16, "'a' appears twice");
    expect_broken("{\"__metadata__\":{\"k\":1}," T1 "}", UINT64_MAX, 16, "__metadata__ 'k' is not a string");
    expect_broken("{\"__metadata__\":[]," T1 "}", UINT64_MAX, 16, "__metadata__ is not an object");
    expect_broken("{\"a\\nb\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", UINT64_MAX, 4,
                  "tensor 'a?b'"); /* a control character in a name does not break the line */

    /* too short for the length itself */
    uint8_t tiny[4] = {0};
    assert_int_equal(ls_safetensors_parse(tiny, 4, "short", &st), LS_ERR);
    assert_string_equal(ls_last_error(), "short: file is 4 bytes, too short for a safetensors header");
    assert_int_equal(ls_safetensors_open("/nonexistent.safetensors", &st), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "/nonexistent.safetensors: cannot open"));
    assert_int_equal(ls_safetensors_open(temp_dir(), &st), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "not a regular file"));

    /* parses, but does not convert to float */
    ok = make_file("{\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", UINT64_MAX, 8, &size);
    assert_int_equal(ls_safetensors_parse(ok, size, "ints", &st), LS_OK);
    float f[2];
    assert_int_equal(ls_safetensors_read_f32(&st, ls_safetensors_find(&st, "i"), f), LS_ERR);
    assert_string_equal(ls_last_error(), "ints: tensor 'i' is I32, which does not convert to float32");
    ls_safetensors_close(&st);
    free(ok);

    /* F64 converts */
    double d[2] = {1.5, -1e-3};
    uint8_t *f64 = make_file("{\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", UINT64_MAX, 16, &size);
    memcpy(f64 + size - 16, d, 16);
    assert_int_equal(ls_safetensors_parse(f64, size, "f64", &st), LS_OK);
    assert_int_equal(ls_safetensors_read_f32(&st, &st.tensors[0], f), LS_OK);
    assert_true(f[0] == 1.5f && f[1] == (float)-1e-3);
    ls_safetensors_close(&st);
    free(f64);
}

/* ---------------------------------------------------------------- fuzz */

static void test_fuzz_mutations(void **state) {
    const char *header = "{\"__metadata__\":{\"format\":\"pt\"}," T1 "," T2
                         ",\"c\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[24,30]}}";
    size_t good_size;
    uint8_t *good = make_file(header, UINT64_MAX, 30, &good_size);
    size_t hlen = strlen(header);
    static const char syntax[] = "{}[]\",:0123456789-.e \\";
    int parsed = 0;
    enum { ITERS = 6000 };
    for (int iter = 0; iter < ITERS; iter++) {
        uint8_t *buf = malloc(good_size + 64);
        memcpy(buf, good, good_size);
        size_t len = good_size;
        int edits = 1 + (int)(next_u64() % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = 8 + next_u64() % hlen;
            unsigned kind = (unsigned)(next_u64() % 12);
            switch (kind < 8 ? kind : 6) { /* digit nudges most often */
            case 0: buf[at] = (uint8_t)next_u64(); break;
            case 1: buf[at] = (uint8_t)syntax[next_u64() % (sizeof syntax - 1)]; break;
            case 2: /* another digit: offsets and shapes that still parse */
                if (buf[at] >= '0' && buf[at] <= '9') buf[at] = (uint8_t)('0' + next_u64() % 10);
                else buf[at] = (uint8_t)('0' + next_u64() % 10);
                break;
            case 3: { /* a random header length, often near the real one */
                uint64_t v = next_u64() % 4 == 0 ? next_u64() : hlen + (next_u64() % 64) - 32;
                for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(v >> (8 * i));
                break;
            }
            case 4: len = next_u64() % (len + 1); break; /* truncate */
            case 5: /* grow the data section */
                for (int k = 0; k < 8; k++) buf[len++] = (uint8_t)next_u64();
                break;
            case 6: /* nudge the next digit by one: overlaps, gaps and size mismatches */
                while (at < 8 + hlen - 1 && !(buf[at] >= '0' && buf[at] <= '9')) at++;
                if (buf[at] >= '0' && buf[at] <= '9') buf[at] = (uint8_t)('0' + (buf[at] - '0' + (next_u64() % 2 ? 1 : 9)) % 10);
                break;
            case 7: /* delete a header byte, keeping the length consistent */
                if (len > at + 1) {
                    memmove(buf + at, buf + at + 1, len - at - 1);
                    len--;
                    uint64_t v = 0;
                    for (int i = 7; i >= 0; i--) v = (v << 8) | buf[i];
                    v--;
                    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(v >> (8 * i));
                }
                break;
            }
            if (len < 8) break;
        }
        uint8_t *exact = malloc(len ? len : 1); /* exactly len bytes: ASan sees any overread */
        memcpy(exact, buf, len);
        ls_safetensors st;
        if (ls_safetensors_parse(exact, len, "fuzz", &st) == LS_OK) {
            parsed++;
            for (int i = 0; i < st.n_tensors; i++) {
                const ls_st_tensor *t = &st.tensors[i];
                assert_true(t->data >= exact && t->data + (t->end - t->begin) <= exact + len);
                assert_int_equal(t->end - t->begin, t->numel * ls_st_dtype_size(t->dtype));
                float *out = malloc(t->numel * sizeof(float) + 1);
                ls_safetensors_read_f32(&st, t, out);
                free(out);
            }
            ls_safetensors_close(&st);
        } else {
            const char *msg = ls_last_error();
            assert_true(strncmp(msg, "fuzz: ", 6) == 0 && !strchr(msg, '\n'));
        }
        free(exact);
        free(buf);
    }
    print_message("fuzz: %d of %d mutated files still parsed\n", parsed, ITERS);
    assert_true(parsed > 0);
    free(good);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16),          cmocka_unit_test(test_f16),
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_broken_files),
        cmocka_unit_test(test_fuzz_mutations),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
