/* common.c: the error message of the current thread, allocation that cannot fail, small helpers. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "lorasweep/common.h"
#include "lorasweep/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char error_message[1024];
static _Thread_local int error_machine; /* the last error is the machine's fault (ls_error_io) */

int ls_error(const char *fmt, ...) {
    error_machine = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return LS_ERR;
}

int ls_error_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof error_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    /* prefix + ": " + old, cut to fit (done by hand: snprintf would warn about truncation) */
    size_t np = strlen(prefix), no = strlen(old), cap = sizeof error_message - 1;
    if (np > cap - 2) np = cap - 2;
    if (no > cap - 2 - np) no = cap - 2 - np;
    memcpy(error_message, prefix, np);
    memcpy(error_message + np, ": ", 2);
    memcpy(error_message + np + 2, old, no);
    error_message[np + 2 + no] = '\0';
    return LS_ERR;
}

const char *ls_last_error(void) { return error_message; }

int ls_errno_is_machine(int errnum) {
    return errnum == ENOSPC || errnum == EDQUOT || errnum == EIO || errnum == EROFS || errnum == ESTALE;
}

int ls_error_io(int errnum, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ls_error("%s: %s", what, strerror(errnum ? errnum : EIO));
    error_machine = ls_errno_is_machine(errnum ? errnum : EIO);
    return LS_ERR;
}

int ls_error_is_machine(void) { return error_machine; }

int ls_error_machine(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    error_machine = 1;
    return LS_ERR;
}

static void out_of_memory(size_t size, const char *file, int line) {
    fprintf(stderr, "lorasweep: out of memory allocating %zu bytes at %s:%d\n", size, file, line);
    abort();
}

void *ls_malloc_at(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) out_of_memory(size, file, line);
    return p;
}

void *ls_calloc_at(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) out_of_memory(count * size, file, line);
    return p;
}

void *ls_realloc_at(void *ptr, size_t size, const char *file, int line) {
    void *p = realloc(ptr, size ? size : 1);
    if (!p) out_of_memory(size, file, line);
    return p;
}

char *ls_strdup_at(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = ls_malloc_at(n, file, line);
    memcpy(p, s, n);
    return p;
}

char *ls_read_file_max(const char *path, size_t max, size_t *size) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        ls_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        ls_error("%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        ls_error("%s: not a regular file (%s)", path,
                 S_ISDIR(sb.st_mode) ? "a directory" : S_ISFIFO(sb.st_mode) ? "a FIFO" : S_ISCHR(sb.st_mode) ? "a character device"
                 : S_ISBLK(sb.st_mode) ? "a block device" : S_ISSOCK(sb.st_mode) ? "a socket" : "not a plain file");
        close(fd);
        return NULL;
    }
    if ((uint64_t)sb.st_size > (uint64_t)max) {
        ls_error("%s: too large (%lld bytes, more than the %zu this file may have)", path, (long long)sb.st_size, max);
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    /* the size is a hint (the file may change while it is read): read to the end, up to max + 1 */
    size_t cap = (size_t)sb.st_size + 1, len = 0;
    char *buf = malloc(cap + 1); /* not ls_malloc: the size comes from the file, so no abort */
    if (!buf) {
        ls_error("%s: out of memory reading %zu bytes", path, cap);
        close(fd);
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max) break;
            size_t grown = cap * 2 < max + 1 ? cap * 2 : max + 1;
            char *more = realloc(buf, grown + 1);
            if (!more) {
                free(buf);
                close(fd);
                ls_error("%s: out of memory reading %zu bytes", path, grown);
                return NULL;
            }
            buf = more, cap = grown;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            ls_error("%s: read error: %s", path, strerror(e));
            return NULL;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    close(fd);
    if (len > max) {
        free(buf);
        ls_error("%s: grew past the %zu bytes this file may have while it was read", path, max);
        return NULL;
    }
    buf[len] = '\0';
    if (size) *size = len;
    return buf;
}

char *ls_read_file(const char *path, size_t *size) { return ls_read_file_max(path, LS_READ_FILE_MAX, size); }

int ls_parse_long(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0') return ls_error("'%s' is not an integer", s);
    if (v < min || v > max) return ls_error("%ld is out of range [%ld, %ld]", v, min, max);
    *out = v;
    return LS_OK;
}

int ls_parse_double(const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v)) return ls_error("'%s' is not a number", s);
    if (v < min || v > max) return ls_error("%g is out of range [%g, %g]", v, min, max);
    *out = v;
    return LS_OK;
}

double ls_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t ls_rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double ls_rng_uniform(uint64_t *state) { return (double)(ls_rng_next(state) >> 11) * 0x1.0p-53; }

int ls_cpus_allowed(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int ls_thread_count(int sharing) {
    long n;
    const char *env = getenv("OMP_NUM_THREADS"); /* the user's word first ("4", or "4,2": the outer level) */
    if (env && ls_parse_long(env, 1, 4096, &n) == LS_OK) return (int)n;
    if (env && env[0] >= '1' && env[0] <= '9' && strchr(env, ',')) return atoi(env);
    int share = ls_cpus_allowed() / (sharing > 0 ? sharing : 1);
    return share > 0 ? share : 1;
}

int ls_check_replaceable(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0 || S_ISREG(st.st_mode)) return LS_OK; /* missing, or a plain file */
    const char *what = S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                       : "not a regular file";
    return ls_error("%s is %s: refusing to replace it (give the path of a regular file)", path, what);
}

int ls_write_file_atomic(const char *path, const void *data, size_t len) {
    if (ls_check_replaceable(path) != LS_OK) return LS_ERR;
    size_t n = strlen(path) + 32;
    char *tmp = ls_malloc(n);
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        ls_error_io(errno, "%s: cannot create %s", path, tmp);
        free(tmp);
        return LS_ERR;
    }
    size_t done = 0;
    int ok = 1;
    while (ok && done < len) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = 0;
        else done += (size_t)w;
    }
    int e = ok ? 0 : errno;
    if (ok && ls_fault_write(path) != 0) ok = 0, e = errno; /* tests: this write meets a full disk */
    if (ok && fsync(fd) != 0) ok = 0, e = errno;
    if (close(fd) != 0 && ok) ok = 0, e = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
    if (!ok) {
        unlink(tmp);
        ls_error_io(e, "%s: write failed", path);
    }
    free(tmp);
    return ok ? LS_OK : LS_ERR;
}

int ls_mkdirs(const char *dir) {
    char *p = ls_strdup(dir);
    int rc = LS_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = ls_error("%s: cannot create the directory: %s", p, strerror(errno));
            break;
        }
        *s = saved;
        if (!saved) break;
    }
    free(p);
    struct stat sb;
    if (rc == LS_OK && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        rc = ls_error("%s: exists and is not a directory", dir);
    return rc;
}

const char *ls_printable(const char *s, char *buf, size_t cap) {
    size_t i = 0, n = strlen(s);
    for (; i < n && i + 4 < cap; i++) buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (i < n) memcpy(buf + i, "...", 3), i += 3;
    buf[i] = '\0';
    return buf;
}

char *ls_escape_controls(const char *s) {
    ls_strbuf b = {0};
    ls_strbuf_add(&b, "", 0);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        switch (*p) {
        case '\n': ls_strbuf_add(&b, "\\n", 2); break;
        case '\t': ls_strbuf_add(&b, "\\t", 2); break;
        case '\r': ls_strbuf_add(&b, "\\r", 2); break;
        case '\\': ls_strbuf_add(&b, "\\\\", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(e, sizeof e, "\\x%02x", *p);
                ls_strbuf_add(&b, e, 4);
            } else {
                ls_strbuf_add(&b, (const char *)p, 1);
            }
        }
    }
    return b.p;
}

void ls_strbuf_add(ls_strbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
        b->p = ls_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void ls_strbuf_puts(ls_strbuf *b, const char *s) { ls_strbuf_add(b, s, strlen(s)); }

void ls_strbuf_printf(ls_strbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        ls_strbuf_add(b, tmp, (size_t)n);
        return;
    }
    char *big = ls_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    ls_strbuf_add(b, big, (size_t)n);
    free(big);
}
