/*
 * safetensors.c: the safetensors reader and writer (format: include/lorasweep/safetensors.h).
 *
 * Design decisions:
 *  - Files are memory-mapped read-only; tensors point into the map and are converted on demand,
 *    so opening a 1 GB checkpoint costs its header only.
 *  - The header is untrusted. It is copied to a NUL-terminated buffer before cJSON sees it (no
 *    parser ever reads the file's bytes past the header), must be UTF-8 without NUL bytes, and
 *    every number in it must be an integer that a double holds exactly (< 2^53). The checks are
 *    those of the format's reference implementation: after sorting by offset the tensors must
 *    follow each other without gap or overlap and end exactly at the end of the file; anything
 *    beyond that would be bytes no tensor owns. Sizes are computed with overflow checks.
 *  - Byte order: the format is little-endian; values are assembled from bytes, so the code is
 *    right on any host (with a memcpy fast path for F32 on little-endian ones).
 *  - Half-precision conversion is done by integer arithmetic, both ways, with round to nearest
 *    even, subnormals, infinities and NaN handled (the test compares with _Float16 where the
 *    compiler has it).
 *  - The writer produces exactly what the reference writer would accept: header padded with
 *    spaces to a multiple of 8, tensors contiguous in the given order. It converts in chunks, so
 *    a tensor given by a fill callback is never held whole.
 */
#include "lorasweep/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lorasweep/common.h"
#include "lorasweep/fault.h"

#define MAX_EXACT_INT 9007199254740992.0 /* 2^53 */

static const struct {
    const char *name;
    size_t size;
} dtype_info[LS_ST_DTYPE_COUNT] = {
    [LS_ST_BOOL] = {"BOOL", 1}, [LS_ST_U8] = {"U8", 1},     [LS_ST_I8] = {"I8", 1},
    [LS_ST_F8_E5M2] = {"F8_E5M2", 1}, [LS_ST_F8_E4M3] = {"F8_E4M3", 1}, [LS_ST_I16] = {"I16", 2},
    [LS_ST_U16] = {"U16", 2},   [LS_ST_F16] = {"F16", 2},   [LS_ST_BF16] = {"BF16", 2},
    [LS_ST_I32] = {"I32", 4},   [LS_ST_U32] = {"U32", 4},   [LS_ST_F32] = {"F32", 4},
    [LS_ST_F64] = {"F64", 8},   [LS_ST_I64] = {"I64", 8},   [LS_ST_U64] = {"U64", 8},
};

const char *ls_st_dtype_name(ls_st_dtype dt) {
    return (unsigned)dt < LS_ST_DTYPE_COUNT ? dtype_info[dt].name : "?";
}

size_t ls_st_dtype_size(ls_st_dtype dt) { return (unsigned)dt < LS_ST_DTYPE_COUNT ? dtype_info[dt].size : 0; }

void ls_st_shape_str(char *buf, size_t cap, int rank, const int64_t *shape) {
    size_t n = 0;
    if (cap == 0) return;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* ---------------------------------------------------------------- scalar conversions */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float ls_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t ls_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays a (quiet) NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                          /* nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float ls_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in float32 */
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13)); /* infinity or NaN */
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t ls_f32_to_f16(float f) {
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN, quiet */
    if (a >= 0x47800000u) return (uint16_t)(sign | 0x7c00u);  /* >= 65536 (or inf): infinity */
    if (a >= 0x38800000u) {                                   /* normal half (>= 2^-14) */
        uint32_t h = (a >> 13) - (112u << 10), rest = a & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++; /* a carry into the exponent is right */
        return (uint16_t)(sign | h);
    }
    if (a <= 0x33000000u) return (uint16_t)sign; /* <= 2^-25: rounds to zero (2^-25 is a tie to even 0) */
    /* subnormal half: value / 2^-24 = m * 2^(e - 126), e the float's biased exponent (102..112) */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126u - e;
    uint32_t h = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

/* ---------------------------------------------------------------- header parsing */


static int utf8_valid(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1f;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0f;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* A JSON number that is an integer in [0, 2^53). */
static int json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= 0 && d < MAX_EXACT_INT) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int dtype_from_name(const char *s, ls_st_dtype *out) {
    for (int i = 0; i < LS_ST_DTYPE_COUNT; i++)
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (ls_st_dtype)i;
            return 1;
        }
    return 0;
}

/* Parse one tensor entry; errors are recorded without the file name (the caller adds it). */
static int parse_tensor(const cJSON *item, ls_st_tensor *t, uint64_t data_size) {
    char name_buf[96], dt_buf[40];
    const char *name = ls_printable(item->string, name_buf, sizeof name_buf);
    if (!cJSON_IsObject(item)) return ls_error("tensor '%s': entry is not an object", name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype)) return ls_error("tensor '%s': no \"dtype\" string", name);
    if (!dtype_from_name(dtype->valuestring, &t->dtype))
        return ls_error("tensor '%s': unknown dtype '%s'", name, ls_printable(dtype->valuestring, dt_buf, sizeof dt_buf));
    if (!cJSON_IsArray(shape)) return ls_error("tensor '%s': no \"shape\" list", name);
    int rank = cJSON_GetArraySize(shape);
    if (rank > LS_ST_MAX_RANK) return ls_error("tensor '%s': rank %d is above %d", name, rank, LS_ST_MAX_RANK);
    t->rank = rank;
    uint64_t numel = 1;
    int overflow = 0, i = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t d;
        if (!json_uint(dim, &d)) return ls_error("tensor '%s': shape[%d] is not a non-negative integer", name, i);
        t->shape[i++] = (int64_t)d;
        if (d != 0 && numel > UINT64_MAX / d) overflow = 1;
        else numel *= d;
    }
    /* a zero dimension makes the product 0 even after an overflowing partial product */
    for (int k = 0; k < rank; k++)
        if (t->shape[k] == 0) numel = 0, overflow = 0;
    if (overflow) return ls_error("tensor '%s': shape's element count overflows", name);
    t->numel = numel;
    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 || !json_uint(offsets->child, &begin) ||
        !json_uint(offsets->child->next, &end))
        return ls_error("tensor '%s': \"data_offsets\" is not a list of two non-negative integers", name);
    if (end < begin) return ls_error("tensor '%s': data_offsets end %llu is before begin %llu", name,
                                     (unsigned long long)end, (unsigned long long)begin);
    if (end > data_size)
        return ls_error("tensor '%s': data_offsets end %llu is beyond the data section (%llu bytes; truncated file?)", name,
                        (unsigned long long)end, (unsigned long long)data_size);
    size_t esize = dtype_info[t->dtype].size;
    if (numel > UINT64_MAX / esize || numel * esize != end - begin) {
        char s[256];
        ls_st_shape_str(s, sizeof s, rank, t->shape);
        return ls_error("tensor '%s': %llu bytes in data_offsets, but shape %s of %s needs %s%llu", name,
                        (unsigned long long)(end - begin), s, dtype_info[t->dtype].name,
                        numel > UINT64_MAX / esize ? "more than " : "",
                        (unsigned long long)(numel > UINT64_MAX / esize ? UINT64_MAX : numel * esize));
    }
    t->begin = begin;
    t->end = end;
    return LS_OK;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const ls_st_tensor *)a)->name, ((const ls_st_tensor *)b)->name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const ls_st_tensor *x = *(const ls_st_tensor *const *)a, *y = *(const ls_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int parse_metadata(const cJSON *item, ls_safetensors *st) {
    if (!cJSON_IsObject(item)) return ls_error("__metadata__ is not an object");
    int n = cJSON_GetArraySize(item), i = 0;
    st->meta = ls_calloc((size_t)n, sizeof *st->meta);
    const cJSON *e;
    cJSON_ArrayForEach(e, item) {
        char kb[96];
        if (!cJSON_IsString(e)) return ls_error("__metadata__ '%s' is not a string", ls_printable(e->string, kb, sizeof kb));
        st->meta[i].key = ls_strdup(e->string);
        st->meta[i].value = ls_strdup(e->valuestring);
        st->n_meta = ++i;
    }
    return LS_OK;
}

/* Check the whole layout of buf (len bytes); fills st. Messages lack the file name. */
static int parse_layout(const uint8_t *buf, size_t len, ls_safetensors *st) {
    if (len < 8) return ls_error("file is %zu bytes, too short for a safetensors header", len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n > LS_ST_MAX_HEADER)
        return ls_error("header length %llu is above the %u-byte limit (not a safetensors file?)",
                        (unsigned long long)n, LS_ST_MAX_HEADER);
    if (n > len - 8)
        return ls_error("header length %llu runs past the end of the file (%zu bytes)", (unsigned long long)n, len);
    const uint8_t *h = buf + 8;
    if (n < 2 || h[0] != '{') return ls_error("header does not start with a JSON object");
    if (memchr(h, '\0', n) || !utf8_valid(h, n)) return ls_error("header is not valid UTF-8 text");
    st->data = buf + 8 + n;
    st->data_size = len - 8 - n;

    char *text = ls_malloc(n + 1);
    memcpy(text, h, n);
    text[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 0);
    int rc = LS_OK;
    if (!root || !cJSON_IsObject(root)) rc = ls_error("header is not a valid JSON object");
    else
        for (const char *p = end; *p; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                rc = ls_error("header has bytes after its JSON object");
                break;
            }
    int count = 0;
    const cJSON *item;
    if (rc == LS_OK)
        cJSON_ArrayForEach(item, root) count += strcmp(item->string, "__metadata__") != 0;
    if (rc == LS_OK) {
        st->tensors = ls_calloc((size_t)count, sizeof *st->tensors);
        cJSON_ArrayForEach(item, root) {
            if (strcmp(item->string, "__metadata__") == 0) {
                if (st->meta) rc = ls_error("header has two __metadata__ entries");
                else rc = parse_metadata(item, st);
            } else {
                ls_st_tensor *t = &st->tensors[st->n_tensors];
                t->name = ls_strdup(item->string);
                st->n_tensors++;
                rc = parse_tensor(item, t, st->data_size);
            }
            if (rc != LS_OK) break;
        }
    }
    cJSON_Delete(root);
    free(text);
    if (rc != LS_OK) return rc;

    qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_by_name);
    char n1[96], n2[96];
    for (int i = 1; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return ls_error("tensor '%s' appears twice", ls_printable(st->tensors[i].name, n1, sizeof n1));
    /* by offset: each tensor starts where the previous one ended, the last ends the file */
    ls_st_tensor **order = ls_malloc((size_t)(st->n_tensors ? st->n_tensors : 1) * sizeof *order);
    for (int i = 0; i < st->n_tensors; i++) order[i] = &st->tensors[i];
    qsort(order, (size_t)st->n_tensors, sizeof *order, cmp_by_offset);
    uint64_t at = 0;
    for (int i = 0; i < st->n_tensors && rc == LS_OK; i++) {
        const ls_st_tensor *t = order[i];
        if (t->begin < at)
            rc = ls_error("tensor '%s' (bytes %llu..%llu) overlaps tensor '%s' (ending at %llu)",
                          ls_printable(t->name, n1, sizeof n1), (unsigned long long)t->begin, (unsigned long long)t->end,
                          ls_printable(order[i - 1]->name, n2, sizeof n2),
                          (unsigned long long)at);
        else if (t->begin > at)
            rc = ls_error("tensor '%s' begins at byte %llu, leaving a gap after byte %llu",
                          ls_printable(t->name, n1, sizeof n1),
                          (unsigned long long)t->begin, (unsigned long long)at);
        at = t->end;
    }
    free(order);
    if (rc == LS_OK && at != st->data_size)
        rc = ls_error("tensors end at byte %llu of a %llu-byte data section (trailing bytes)",
                      (unsigned long long)at, (unsigned long long)st->data_size);
    if (rc != LS_OK) return rc;
    for (int i = 0; i < st->n_tensors; i++) st->tensors[i].data = st->data + st->tensors[i].begin;
    return LS_OK;
}

int ls_safetensors_parse(const void *buf, size_t len, const char *name, ls_safetensors *out) {
    memset(out, 0, sizeof *out);
    if (parse_layout(buf, len, out) != LS_OK) {
        ls_error_prefix("%s", name);
        ls_safetensors_close(out);
        return LS_ERR;
    }
    out->name = ls_strdup(name);
    return LS_OK;
}

int ls_safetensors_open(const char *path, ls_safetensors *out) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ls_error("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return ls_error("%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ls_error("%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return ls_error("%s: file is %zu bytes, too short for a safetensors header", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return ls_error("%s: cannot map: %s", path, strerror(errno));
    if (ls_safetensors_parse(map, size, path, out) != LS_OK) {
        munmap(map, size);
        return LS_ERR;
    }
    out->map = map;
    out->map_size = size;
    return LS_OK;
}

void ls_safetensors_close(ls_safetensors *st) {
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->tensors);
    free(st->meta);
    free(st->name);
    if (st->map) munmap(st->map, st->map_size);
    memset(st, 0, sizeof *st);
}

const ls_st_tensor *ls_safetensors_find(const ls_safetensors *st, const char *name) {
    int lo = 0, hi = st->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(name, st->tensors[mid].name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *ls_safetensors_meta(const ls_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

int ls_safetensors_read_f32(const ls_safetensors *st, const ls_st_tensor *t, float *out) {
    const uint8_t *p = t->data;
    uint64_t n = t->numel;
    switch (t->dtype) {
    case LS_ST_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (n) memcpy(out, p, n * 4);
#else
        for (uint64_t i = 0; i < n; i++, p += 4)
            out[i] = bits_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
#endif
        return LS_OK;
    case LS_ST_BF16:
        for (uint64_t i = 0; i < n; i++, p += 2) out[i] = bits_f32(((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16);
        return LS_OK;
    case LS_ST_F16:
        for (uint64_t i = 0; i < n; i++, p += 2) out[i] = ls_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
        return LS_OK;
    case LS_ST_F64:
        for (uint64_t i = 0; i < n; i++, p += 8) {
            uint64_t u = 0;
            for (int k = 7; k >= 0; k--) u = (u << 8) | p[k];
            double d;
            memcpy(&d, &u, 8);
            out[i] = (float)d;
        }
        return LS_OK;
    default: {
        char nb[96];
        return ls_error("%s: tensor '%s' is %s, which does not convert to float32", st->name ? st->name : "?",
                        ls_printable(t->name, nb, sizeof nb), dtype_info[t->dtype].name);
    }
    }
}

/* ---------------------------------------------------------------- writing */

/* Append s as a JSON string (quoted, escaped) to the growing buffer. */
static void buf_put(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap) *cap = *cap * 2 + 256;
        *buf = ls_realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) LS_PRINTF(4, 5);
static void buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    buf_put(buf, len, cap, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void buf_json_string(char **buf, size_t *len, size_t *cap, const char *s) {
    buf_put(buf, len, cap, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_put(buf, len, cap, e, 2);
        } else if (c < 0x20) {
            buf_printf(buf, len, cap, "\\u%04x", c);
        } else {
            buf_put(buf, len, cap, (const char *)&c, 1);
        }
    }
    buf_put(buf, len, cap, "\"", 1);
}

/* Build the header text (padded to a multiple of 8 with the 8 length bytes); checks the tensors. */
static char *build_header(const ls_st_write *tensors, int n, const ls_st_meta *meta, int n_meta, uint64_t *hlen,
                          uint64_t *data_size) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    buf_put(&buf, &len, &cap, "{", 1);
    if (n_meta > 0) {
        buf_put(&buf, &len, &cap, "\"__metadata__\":{", 16);
        for (int i = 0; i < n_meta; i++) {
            if (i) buf_put(&buf, &len, &cap, ",", 1);
            buf_json_string(&buf, &len, &cap, meta[i].key);
            buf_put(&buf, &len, &cap, ":", 1);
            buf_json_string(&buf, &len, &cap, meta[i].value);
        }
        buf_put(&buf, &len, &cap, "}", 1);
    }
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const ls_st_write *t = &tensors[i];
        uint64_t numel = 1;
        for (int k = 0; k < t->rank; k++) numel *= (uint64_t)t->shape[k];
        uint64_t bytes = numel * ls_st_dtype_size(t->dtype);
        if (i || n_meta > 0) buf_put(&buf, &len, &cap, ",", 1);
        buf_json_string(&buf, &len, &cap, t->name);
        buf_printf(&buf, &len, &cap, ":{\"dtype\":\"%s\",\"shape\":[", ls_st_dtype_name(t->dtype));
        for (int k = 0; k < t->rank; k++) buf_printf(&buf, &len, &cap, k ? ",%lld" : "%lld", (long long)t->shape[k]);
        buf_printf(&buf, &len, &cap, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at,
                   (unsigned long long)(at + bytes));
        at += bytes;
    }
    buf_put(&buf, &len, &cap, "}", 1);
    while (len % 8) buf_put(&buf, &len, &cap, " ", 1);
    *hlen = len;
    *data_size = at;
    return buf;
}

static int check_write(const char *path, const ls_st_write *tensors, int n, const ls_st_meta *meta, int n_meta) {
    for (int i = 0; i < n_meta; i++)
        if (!meta[i].key || !meta[i].value || strcmp(meta[i].key, "") == 0 ||
            !utf8_valid((const uint8_t *)meta[i].key, strlen(meta[i].key)) ||
            !utf8_valid((const uint8_t *)meta[i].value, strlen(meta[i].value)))
            return ls_error("%s: metadata entry %d is not a UTF-8 key and value", path, i);
    for (int i = 0; i < n; i++) {
        const ls_st_write *t = &tensors[i];
        if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0 ||
            !utf8_valid((const uint8_t *)t->name, strlen(t->name)))
            return ls_error("%s: tensor %d has no usable name", path, i);
        if (t->dtype != LS_ST_F32 && t->dtype != LS_ST_BF16 && t->dtype != LS_ST_F16)
            return ls_error("%s: tensor '%s': cannot store as %s (F32, BF16 or F16 only)", path, t->name,
                            ls_st_dtype_name(t->dtype));
        if (t->rank < 0 || t->rank > LS_ST_MAX_RANK)
            return ls_error("%s: tensor '%s': rank %d is not in 0..%d", path, t->name, t->rank, LS_ST_MAX_RANK);
        uint64_t numel = 1;
        for (int k = 0; k < t->rank; k++) {
            if (t->shape[k] < 0) return ls_error("%s: tensor '%s': negative dimension", path, t->name);
            if (t->shape[k] && numel > (UINT64_C(1) << 50) / (uint64_t)t->shape[k])
                return ls_error("%s: tensor '%s': too many elements", path, t->name);
            numel *= (uint64_t)t->shape[k];
        }
        if (!t->data && !t->fill && numel) return ls_error("%s: tensor '%s': no data", path, t->name);
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0) return ls_error("%s: tensor '%s' given twice", path, t->name);
    }
    return LS_OK;
}

enum { CHUNK = 1 << 16 };

/* Convert and write one tensor in chunks. */
static int write_tensor(FILE *f, const ls_st_write *t, float *scratch, uint8_t *bytes) {
    uint64_t numel = 1;
    for (int k = 0; k < t->rank; k++) numel *= (uint64_t)t->shape[k];
    size_t esize = ls_st_dtype_size(t->dtype);
    for (uint64_t start = 0; start < numel; start += CHUNK) {
        size_t count = numel - start < CHUNK ? (size_t)(numel - start) : CHUNK;
        const float *src = t->data ? t->data + start : scratch;
        if (!t->data) t->fill(t->ctx, scratch, start, count);
        for (size_t i = 0; i < count; i++) {
            uint8_t *o = bytes + i * esize;
            if (t->dtype == LS_ST_F32) {
                uint32_t u = f32_bits(src[i]);
                o[0] = (uint8_t)u, o[1] = (uint8_t)(u >> 8), o[2] = (uint8_t)(u >> 16), o[3] = (uint8_t)(u >> 24);
            } else {
                uint16_t h = t->dtype == LS_ST_BF16 ? ls_f32_to_bf16(src[i]) : ls_f32_to_f16(src[i]);
                o[0] = (uint8_t)h, o[1] = (uint8_t)(h >> 8);
            }
        }
        if (fwrite(bytes, esize, count, f) != count) return LS_ERR;
    }
    return LS_OK;
}

int ls_safetensors_write(const char *path, const ls_st_write *tensors, int n, const ls_st_meta *meta, int n_meta) {
    if (n < 0 || n_meta < 0) return ls_error("%s: negative tensor or metadata count", path);
    if (check_write(path, tensors, n, meta, n_meta) != LS_OK || ls_check_replaceable(path) != LS_OK) return LS_ERR;
    uint64_t hlen, data_size;
    char *header = build_header(tensors, n, meta, n_meta, &hlen, &data_size);
    size_t tn = strlen(path) + 32;
    char *tmp = ls_malloc(tn);
    snprintf(tmp, tn, "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) close(fd);
        free(header);
        ls_error_io(e, "%s: cannot create %s", path, tmp);
        free(tmp);
        return LS_ERR;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(hlen >> (8 * i));
    errno = 0;
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
    free(header);
    float *scratch = ls_malloc(CHUNK * sizeof(float));
    uint8_t *bytes = ls_malloc(CHUNK * 4);
    for (int i = 0; ok && i < n; i++) ok = write_tensor(f, &tensors[i], scratch, bytes) == LS_OK;
    int e = ok ? 0 : errno; /* the cause of a failed fwrite (a full disk), before anything else runs */
    free(scratch);
    free(bytes);
    if (ok && ls_fault_write(path) != 0) ok = 0, e = errno; /* tests: this write meets a full disk */
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0)) ok = 0, e = errno;
    if (fclose(f) != 0 && ok) ok = 0, e = errno;
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        ls_error_io(errno, "%s: cannot rename %s to it", path, tmp);
    } else if (!ok) {
        ls_error_io(e, "%s: write failed", path);
    }
    if (!ok) unlink(tmp);
    free(tmp);
    return ok ? LS_OK : LS_ERR;
}
