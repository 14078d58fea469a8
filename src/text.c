/*
 * text.c: the LLMTIME text scheme (series <-> "1.900,2.081;1.481,1.559;") and token windows.
 *
 * Design decisions (docs/encoding.md has the user's view):
 *  - Encoding prints exactly what snprintf("%.*f", decimals, value / alpha) prints (correctly
 *    rounded, glibc's round-half-even on exact binary ties), except that a value that rounds to
 *    zero never carries a '-' sign. snprintf costs ~150 ns a value, so the common case is done with
 *    integer arithmetic: scaled = |x| * 10^d is split into floor and fraction; when the fraction is
 *    not within 1e-6 of one half the rounding of the exact product is certain (the product's own
 *    rounding error is below 1.2e-7 for scaled < 1e9) and the digits are written by hand. Near-ties,
 *    huge and non-finite values go through snprintf, so the output is byte-identical to it.
 *  - Decoding never fails and never reads past len (no NUL needed). Text is cut at ';' into steps;
 *    a step is kept when it has exactly `vars` fields separated by ',' and each field is a plain
 *    decimal number -?[0-9]+(\.[0-9]+)? of at most LS_LLMTIME_MAX_DIGITS digits, with optional
 *    surrounding ASCII white space. Everything else is one dropped step. Digits are accumulated
 *    in a uint64 (the cap keeps them below 10^18), so no overflow and no strtod locale surprises.
 *  - Auto alpha selects the percentile's two neighbouring order statistics with quickselect on a
 *    copy (O(n)) and interpolates linearly between them, as numpy.percentile does by default.
 */
#include "lorasweep/text.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"

/* Exact powers of ten as doubles (all below 2^53 * 2^k, so exactly representable). */
static const double pow10_table[19] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,
                                       1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13,
                                       1e14, 1e15, 1e16, 1e17, 1e18};

/* ------------------------------------------------------------------------------------------ */
/* auto alpha                                                                                 */

/* Rearrange a[0..n) so that a[k] holds the k-th smallest value, everything before it is <= and
 * everything after it is >= (nth_element). Hoare partition around a median of three. */
static double select_kth(double *a, ptrdiff_t n, ptrdiff_t k) {
    ptrdiff_t lo = 0, hi = n - 1;
    while (lo < hi) {
        ptrdiff_t mid = lo + (hi - lo) / 2;
        double x = a[lo], y = a[mid], z = a[hi];
        double p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) {
                double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        /* now a[lo..j] <= p, a[j+1..i-1] == p, a[i..hi] >= p */
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return a[k];
}

double ls_llmtime_auto_alpha(const float *values, size_t n, double pct, double target) {
    const double floor_alpha = 1e-12;
    if (!values || n == 0) return 1.0;
    if (!(pct >= 0.0)) pct = 0.0; /* also catches NaN */
    if (pct > 100.0) pct = 100.0;
    double *a = ls_malloc(n * sizeof *a);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(values[i])) a[m++] = fabs((double)values[i]);
    if (m == 0) {
        free(a);
        return 1.0;
    }
    double rank = pct / 100.0 * (double)(m - 1);
    size_t lo = (size_t)floor(rank);
    if (lo > m - 1) lo = m - 1;
    double frac = rank - (double)lo;
    double v = select_kth(a, (ptrdiff_t)m, (ptrdiff_t)lo);
    if (frac > 0.0 && lo + 1 < m) {
        double next = a[lo + 1]; /* the smallest of the values after position lo */
        for (size_t i = lo + 2; i < m; i++)
            if (a[i] < next) next = a[i];
        v += frac * (next - v);
    }
    free(a);
    double alpha = (target > 0.0 && isfinite(target)) ? v / target : v;
    if (!(alpha >= floor_alpha)) alpha = floor_alpha; /* also NaN */
    if (alpha > DBL_MAX) alpha = DBL_MAX;
    return alpha;
}

/* ------------------------------------------------------------------------------------------ */
/* encode                                                                                     */

/* Longest text one value can produce: snprintf("%.8f", -DBL_MAX) is 1 + 309 + 1 + 8 chars. */
enum { VALUE_MAX_CHARS = 352 };

/* The slow, reference path: snprintf, then drop the sign of a negative zero ("-0.000"). */
static size_t format_slow(double x, int decimals, char *out) {
    char tmp[VALUE_MAX_CHARS + 8];
    int n = snprintf(tmp, sizeof tmp, "%.*f", decimals, x);
    if (n < 0) n = 0;
    if (n > VALUE_MAX_CHARS) n = VALUE_MAX_CHARS; /* cannot happen for decimals <= 8 */
    const char *s = tmp;
    if (tmp[0] == '-' && isfinite(x)) {
        int nonzero = 0;
        for (int i = 1; i < n; i++)
            if (tmp[i] >= '1' && tmp[i] <= '9') nonzero = 1;
        if (!nonzero) s++, n--;
    }
    memcpy(out, s, (size_t)n);
    return (size_t)n;
}

/* Write x rounded to `decimals` places into out (no NUL); returns the length. */
static size_t format_value(double x, int decimals, char *out) {
    if (!isfinite(x)) return format_slow(x, decimals, out);
    double ax = fabs(x);
    double scaled = ax * pow10_table[decimals];
    if (!(scaled < 1e9)) return format_slow(x, decimals, out);
    double whole = floor(scaled);
    double frac = scaled - whole; /* exact */
    if (fabs(frac - 0.5) < 1e-6) return format_slow(x, decimals, out);
    uint64_t q = (uint64_t)whole + (frac > 0.5);
    char *p = out;
    if (x < 0 && q != 0) *p++ = '-';
    uint64_t scale = (uint64_t)pow10_table[decimals];
    uint64_t ip = q / scale, fp = q % scale;
    char digits[24];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (nd) *p++ = digits[--nd];
    if (decimals > 0) {
        *p++ = '.';
        for (int i = decimals - 1; i >= 0; i--) {
            p[i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        p += decimals;
    }
    return (size_t)(p - out);
}

char *ls_llmtime_encode(const ls_llmtime *enc, const float *values, int steps, int vars, size_t *len) {
    if (!enc || !(enc->alpha > 0.0) || !isfinite(enc->alpha)) {
        ls_error("LLMTIME alpha must be a positive number");
        return NULL;
    }
    if (enc->decimals < 0 || enc->decimals > LS_LLMTIME_MAX_DECIMALS) {
        ls_error("LLMTIME decimals %d is out of range [0, %d]", enc->decimals, LS_LLMTIME_MAX_DECIMALS);
        return NULL;
    }
    if (steps < 0 || vars < 1 || (steps > 0 && !values)) {
        ls_error("LLMTIME encode: bad shape (%d steps, %d variables)", steps, vars);
        return NULL;
    }
    const int d = enc->decimals;
    const double alpha = enc->alpha;
    /* A typical value "12.345" plus its separator; grown when a value is longer. */
    size_t cap = (size_t)steps * (size_t)vars * (size_t)(d + 6) + VALUE_MAX_CHARS + 2;
    char *buf = ls_malloc(cap);
    size_t n = 0;
    for (int s = 0; s < steps; s++) {
        const float *row = values + (size_t)s * (size_t)vars;
        for (int v = 0; v < vars; v++) {
            if (cap - n < VALUE_MAX_CHARS + 2) buf = ls_realloc(buf, cap *= 2);
            n += format_value((double)row[v] / alpha, d, buf + n);
            buf[n++] = v + 1 < vars ? ',' : ';';
        }
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* decode                                                                                     */

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Parse one field s[0..n) as a plain decimal number; 1 on success. */
static int parse_field(const char *s, size_t n, double *out) {
    size_t i = 0;
    while (i < n && is_space((unsigned char)s[i])) i++;
    while (n > i && is_space((unsigned char)s[n - 1])) n--;
    if (i == n) return 0;
    int neg = 0;
    if (s[i] == '-') neg = 1, i++;
    uint64_t mant = 0;
    int digits = 0, int_digits = 0, frac_digits = 0;
    while (i < n && is_digit((unsigned char)s[i])) {
        if (++digits > LS_LLMTIME_MAX_DIGITS) return 0;
        mant = mant * 10 + (uint64_t)(s[i] - '0');
        int_digits++, i++;
    }
    if (int_digits == 0) return 0;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit((unsigned char)s[i])) {
            if (++digits > LS_LLMTIME_MAX_DIGITS) return 0;
            mant = mant * 10 + (uint64_t)(s[i] - '0');
            frac_digits++, i++;
        }
        if (frac_digits == 0) return 0; /* "1." */
    }
    if (i != n) return 0;
    double v = (double)mant / pow10_table[frac_digits];
    *out = neg ? -v : v;
    return 1;
}

/* Parse one step s[0..n) of exactly `vars` fields into row (scaled by alpha); 1 on success. */
static int parse_step(const char *s, size_t n, int vars, double alpha, float *row) {
    size_t start = 0;
    for (int v = 0; v < vars; v++) {
        const char *comma = start < n ? memchr(s + start, ',', n - start) : NULL;
        size_t end = comma ? (size_t)(comma - s) : n;
        if (v + 1 < vars && !comma) return 0; /* too few fields */
        if (v + 1 == vars && comma) return 0; /* too many fields */
        double x;
        if (!parse_field(s + start, end - start, &x)) return 0;
        x *= alpha;
        if (!(fabs(x) <= FLT_MAX)) return 0; /* converting a larger double to float is UB */
        row[v] = (float)x;
        start = end + 1;
    }
    return 1;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_space((unsigned char)s[i])) return 0;
    return 1;
}

ls_llmtime_decoded ls_llmtime_decode(const ls_llmtime *enc, const char *text, size_t len, int vars,
                                     int max_steps) {
    ls_llmtime_decoded d = {NULL, 0, 0};
    if (!text || len == 0 || vars < 1) return d;
    double alpha = (enc && enc->alpha > 0.0 && isfinite(enc->alpha)) ? enc->alpha : 1.0;

    /* Room for every step that can be kept: at most one per ';' plus a final unterminated one,
     * and at most (len + 1) / (2 vars) since k kept steps take at least 2 k vars - 1 bytes (a
     * digit per field, the commas, the ';'s between them). The second bound keeps a huge `vars`
     * on a short text from allocating anything large: bound * vars <= (len + 1) / 2. */
    size_t bound = 1;
    for (const char *p = text, *end = text + len; (p = memchr(p, ';', (size_t)(end - p))); p++) bound++;
    size_t fit = (len + 1) / (2 * (size_t)vars);
    if (bound > fit) bound = fit;
    if (max_steps > 0 && bound > (size_t)max_steps) bound = (size_t)max_steps;
    d.values = bound ? ls_malloc(bound * (size_t)vars * sizeof *d.values) : NULL;

    size_t pos = 0;
    while (pos < len && (max_steps <= 0 || d.steps < max_steps)) {
        const char *semi = memchr(text + pos, ';', len - pos);
        size_t end = semi ? (size_t)(semi - text) : len;
        if (!semi && is_blank(text + pos, end - pos)) break; /* trailing white space: no step */
        /* d.steps == bound: this piece cannot be a whole step (see above), no row to parse into */
        if ((size_t)d.steps < bound &&
            parse_step(text + pos, end - pos, vars, alpha, d.values + (size_t)d.steps * (size_t)vars))
            d.steps++;
        else
            d.dropped++;
        pos = end + 1;
    }
    if (d.steps == 0) {
        free(d.values);
        d.values = NULL;
    }
    return d;
}

void ls_llmtime_decoded_free(ls_llmtime_decoded *d) {
    if (!d) return;
    free(d->values);
    d->values = NULL;
    d->steps = d->dropped = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* windows                                                                                    */

int ls_windows_make(int n, int ctx, int stride, ls_windows *out) {
    out->count = 0;
    out->start = out->valid = NULL;
    if (ctx < 2) return ls_error("window length (ctx) must be at least 2, got %d", ctx);
    if (n < 0) return ls_error("token count must not be negative, got %d", n);
    if (stride <= 0) stride = ctx / 2 > 0 ? ctx / 2 : 1;
    if (stride > ctx)
        return ls_error("window stride %d is larger than the window (%d tokens): tokens would be skipped",
                        stride, ctx);
    if (n == 0) return LS_OK;
    /* Windows start at 0, stride, 2*stride, ... up to and including the first that reaches n. */
    int count = n <= ctx ? 1 : 1 + (int)(((long long)n - ctx + stride - 1) / stride);
    out->start = ls_malloc((size_t)count * sizeof *out->start);
    out->valid = ls_malloc((size_t)count * sizeof *out->valid);
    for (int w = 0; w < count; w++) {
        long long s = (long long)w * stride;
        out->start[w] = (int)s;
        out->valid[w] = n - s < ctx ? (int)(n - s) : ctx;
    }
    out->count = count;
    return LS_OK;
}

void ls_windows_free(ls_windows *w) {
    if (!w) return;
    free(w->start);
    free(w->valid);
    w->start = w->valid = NULL;
    w->count = 0;
}

int ls_windows_targets(const ls_windows *w, int index) {
    if (!w || index < 0 || index >= w->count || w->valid[index] < 2) return 0;
    return w->valid[index] - 1;
}

void ls_windows_fill(const ls_windows *w, int index, const int32_t *tokens, int ctx, int32_t pad_id,
                     int32_t *ids, uint8_t *mask) {
    int valid = 0;
    const int32_t *src = NULL;
    if (w && index >= 0 && index < w->count) {
        valid = w->valid[index] < ctx ? w->valid[index] : ctx;
        src = tokens + w->start[index];
    }
    for (int i = 0; i < ctx; i++) {
        ids[i] = i < valid ? src[i] : pad_id;
        if (mask) mask[i] = i < valid;
    }
}
