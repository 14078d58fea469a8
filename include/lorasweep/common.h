/*
 * common.h: error reporting and allocation shared by every module.
 *
 * Two tiers of errors (see docs/architecture.md):
 *  - Expected failures (a bad file, a wrong option, a value out of range) are returned: the
 *    function records one line with ls_error() and returns LS_ERR (or NULL). The caller passes
 *    it on; the command line prints "lorasweep: <message>" and exits non-zero.
 *  - Infrastructure failures (out of memory) abort at once with file:line, as llm.c's
 *    mallocCheck does: nothing sensible can continue.
 * Messages name the file and what is wrong, e.g. "data.h5: /trajectories has 2 dimensions,
 * expected 3 (systems, steps, 2)".
 */
#ifndef LORASWEEP_COMMON_H
#define LORASWEEP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define LS_OK 0
#define LS_ERR (-1)

#if defined(__GNUC__)
#define LS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define LS_PRINTF(fmt, args)
#endif

/* Record the current error message (printf-style, one line); always returns LS_ERR. */
int ls_error(const char *fmt, ...) LS_PRINTF(1, 2);
/* Prefix the current error message: ls_error_prefix("%s", path) turns "bad" into "path: bad". */
int ls_error_prefix(const char *fmt, ...) LS_PRINTF(1, 2);
/* The last recorded message of this thread ("" if none). */
const char *ls_last_error(void);

/* A failed system call on a file: records "<what>: <strerror(errnum)>" and remembers whether the
 * cause is the machine's (ls_errno_is_machine: a full disk, a quota, an I/O error, a read-only or
 * stale file system) rather than the input's. A sweep stops on a machine fault instead of blaming
 * the trial that met it. ls_error clears the mark, ls_error_prefix keeps it. Returns LS_ERR. */
int ls_error_io(int errnum, const char *fmt, ...) LS_PRINTF(2, 3);
int ls_error_is_machine(void);
/* A fault of the machine that no errno names (a GPU whose context an illegal address or an
 * uncorrectable ECC error destroyed): records the message with the machine mark, as
 * ls_error_io does for a full disk. Returns LS_ERR. */
int ls_error_machine(const char *fmt, ...) LS_PRINTF(1, 2);
/* ENOSPC, EDQUOT, EIO, EROFS, ESTALE. */
int ls_errno_is_machine(int errnum);

/* Allocation that cannot fail: aborts with file:line when the system is out of memory. */
void *ls_malloc_at(size_t size, const char *file, int line);
void *ls_calloc_at(size_t count, size_t size, const char *file, int line);
void *ls_realloc_at(void *ptr, size_t size, const char *file, int line);
char *ls_strdup_at(const char *s, const char *file, int line);
#define ls_malloc(size) ls_malloc_at((size), __FILE__, __LINE__)
#define ls_calloc(count, size) ls_calloc_at((count), (size), __FILE__, __LINE__)
#define ls_realloc(ptr, size) ls_realloc_at((ptr), (size), __FILE__, __LINE__)
#define ls_strdup(s) ls_strdup_at((s), __FILE__, __LINE__)

/* Read a whole file into a NUL-terminated buffer; NULL and an error naming the path on failure.
 * Only a regular file is read: a FIFO, a device (/dev/zero), a directory or a socket is refused
 * at once (a FIFO is opened without waiting for a writer), and so is a file larger than max
 * bytes, before anything is allocated; out of memory is an error too, not an abort, since the
 * size comes from the file. ls_read_file reads at most LS_READ_FILE_MAX bytes. */
#define LS_READ_FILE_MAX ((size_t)256 << 20)
char *ls_read_file_max(const char *path, size_t max, size_t *size);
char *ls_read_file(const char *path, size_t *size);

/* LS_OK when path is missing or a regular file; else (a symlink, a FIFO, a device, a directory)
 * LS_ERR with one line. Writers that rename a temporary file over path call it first, so that
 * `--out /dev/sda` or a symlink to someone's file is refused rather than replaced. */
int ls_check_replaceable(const char *path);

/* Write a whole file atomically: a temporary file beside path, synced, renamed over path. On
 * failure nothing at path changes and the error names path and the reason. A path that is not a
 * regular file is refused (ls_check_replaceable). */
int ls_write_file_atomic(const char *path, const void *data, size_t len);
/* mkdir -p: create dir and its parents as needed; an existing directory is fine. */
int ls_mkdirs(const char *dir);
/* s made safe for a one-line message (control bytes as '?', cut with "..." to fit cap). */
const char *ls_printable(const char *s, char *buf, size_t cap);

/* s with its control bytes (0x00-0x1f, 0x7f) and backslashes written as C escapes ("\n", "\t",
 * "\x1b", "\\"), so that text read from a file prints as one line and cannot drive the terminal;
 * bytes from 0x80 up (UTF-8) are kept. malloc'ed. */
char *ls_escape_controls(const char *s);

/* A growable NUL-terminated string (for writing YAML, JSON, CSV): start zeroed, read .p, free(.p). */
typedef struct {
    char *p;
    size_t n, cap;
} ls_strbuf;
void ls_strbuf_add(ls_strbuf *b, const char *s, size_t n);
void ls_strbuf_puts(ls_strbuf *b, const char *s);
void ls_strbuf_printf(ls_strbuf *b, const char *fmt, ...) LS_PRINTF(2, 3);

/* Parse numbers strictly: the whole string must be a number in [min, max]. */
int ls_parse_long(const char *s, long min, long max, long *out);
int ls_parse_double(const char *s, double min, double max, double *out);

/* A small deterministic random generator (splitmix64): the same seed gives the same stream on
 * every machine. The state is one uint64_t the caller keeps (and checkpoints). */
uint64_t ls_rng_next(uint64_t *state);
/* Uniform in [0, 1) with 53 random bits. */
double ls_rng_uniform(uint64_t *state);

/* The CPUs this process may run on: its affinity mask (a Slurm cpuset, taskset, mpirun's binding),
 * not the machine's core count. */
int ls_cpus_allowed(void);
/* Compute threads for this process: OMP_NUM_THREADS when set, else its allowed CPUs shared among
 * `sharing` processes that have the same CPUs (at least 1). */
int ls_thread_count(int sharing);

/* Seconds since an arbitrary point, monotonic. */
double ls_now(void);

#endif
