/*
 * safetensors.h: reading and writing the safetensors format (Hugging Face's checkpoint files).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v", ...},            (optional, strings only)
 *    "name": {"dtype": "BF16", "shape": [V, C], "data_offsets": [begin, end]}, ...}
 * then the data section; offsets are bytes from the start of the data section.
 *
 * The reader treats the file as untrusted: it checks everything the format's reference
 * implementation checks (header length within the file and under 100 MB, a JSON object, known
 * dtypes, integral shapes, end - begin == product(shape) * dtype size, tensors contiguous and
 * covering the data section exactly, unique names) before any tensor byte is looked at, so a
 * tensor of an opened file can be read without further bounds checks. Every failure is one line
 * "FILE: what is wrong" (ls_last_error), never a crash.
 */
#ifndef LORASWEEP_SAFETENSORS_H
#define LORASWEEP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define LS_ST_MAX_RANK 8
#define LS_ST_MAX_HEADER 100000000u /* the reference implementation's cap */

/* Every dtype of the format. The reader parses all of them; conversion to float32
 * (ls_safetensors_read_f32) is offered for F64, F32, F16 and BF16; the writer stores F32, F16
 * or BF16. */
typedef enum {
    LS_ST_BOOL, LS_ST_U8, LS_ST_I8, LS_ST_F8_E5M2, LS_ST_F8_E4M3, LS_ST_I16, LS_ST_U16, LS_ST_F16,
    LS_ST_BF16, LS_ST_I32, LS_ST_U32, LS_ST_F32, LS_ST_F64, LS_ST_I64, LS_ST_U64, LS_ST_DTYPE_COUNT
} ls_st_dtype;

const char *ls_st_dtype_name(ls_st_dtype dt); /* "BF16" */
size_t ls_st_dtype_size(ls_st_dtype dt);      /* bytes per element */

typedef struct {
    char *name;
    ls_st_dtype dtype;
    int rank;                          /* 0 (a scalar) .. LS_ST_MAX_RANK */
    int64_t shape[LS_ST_MAX_RANK];
    uint64_t numel;                    /* product of shape (1 for a scalar) */
    uint64_t begin, end;               /* byte range within the data section */
    const uint8_t *data;               /* the first byte (not aligned in general) */
} ls_st_tensor;

typedef struct {
    char *key, *value;
} ls_st_meta_entry;

typedef struct {
    char *name;                        /* path (or the name given to the parser) for messages */
    int n_tensors;
    ls_st_tensor *tensors;             /* (n_tensors) sorted by name */
    int n_meta;
    ls_st_meta_entry *meta;            /* the __metadata__ entries, in file order */
    const uint8_t *data;               /* the data section */
    uint64_t data_size;
    void *map;                         /* the mmap'ed file, or NULL when parsed from memory */
    size_t map_size;
} ls_safetensors;

/* Open and check a file (memory-mapped read-only). LS_ERR with "PATH: problem" on failure;
 * *out is then zeroed and needs no close. */
int ls_safetensors_open(const char *path, ls_safetensors *out);
/* The same over a buffer the caller keeps alive until close; `name` is used in messages. */
int ls_safetensors_parse(const void *buf, size_t len, const char *name, ls_safetensors *out);
void ls_safetensors_close(ls_safetensors *st);

/* The tensor of that exact name, or NULL. */
const ls_st_tensor *ls_safetensors_find(const ls_safetensors *st, const char *name);
/* The value of a __metadata__ key, or NULL. */
const char *ls_safetensors_meta(const ls_safetensors *st, const char *key);
/* Convert a tensor to float32 into out (t->numel floats). F16 and BF16 convert exactly
 * (subnormals, infinities and NaN included), F64 rounds to nearest. LS_ERR for other dtypes. */
int ls_safetensors_read_f32(const ls_safetensors *st, const ls_st_tensor *t, float *out);
/* Write "[2, 3]" (the shape) into buf. */
void ls_st_shape_str(char *buf, size_t cap, int rank, const int64_t *shape);

/* One tensor to write, from float32 values: either `data` (numel floats), or, when data is NULL,
 * `fill` produces them in consecutive chunks (start = index of the first value, count values),
 * so that a large checkpoint can be written without holding it in memory. */
typedef struct {
    const char *name;
    ls_st_dtype dtype;                 /* stored as LS_ST_F32, LS_ST_BF16 or LS_ST_F16 */
    int rank;
    int64_t shape[LS_ST_MAX_RANK];
    const float *data;
    void (*fill)(void *ctx, float *out, uint64_t start, size_t count);
    void *ctx;
} ls_st_write;

typedef struct {
    const char *key, *value;
} ls_st_meta;

/* Write tensors (in the given order) and metadata to path: the header is padded with spaces to
 * a multiple of 8 bytes as the reference writer does; BF16 and F16 round to nearest, ties to
 * even. The file is written as "<path>.tmp<pid>", synced and renamed over path, so a failed write
 * leaves an existing file as it was. LS_ERR with a message naming path on failure (a bad name,
 * shape or dtype, a duplicate name, a full disk). */
int ls_safetensors_write(const char *path, const ls_st_write *tensors, int n, const ls_st_meta *meta, int n_meta);

/* Scalar conversions (exact float -> half/bfloat16 rounding: nearest, ties to even; NaN stays
 * NaN, overflow goes to infinity). */
float ls_bf16_to_f32(uint16_t h);
uint16_t ls_f32_to_bf16(float f);
float ls_f16_to_f32(uint16_t h);
uint16_t ls_f32_to_f16(float f);

#endif
