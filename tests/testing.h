/*
 * testing.h: what every cmocka test file includes. Paths to the shared reference files and a
 * rule for when they are missing: skip, unless LS_REQUIRE_SHARED=1 (CI), then fail. A program
 * whose tests skipped exits 77 (test_exit_status), which ctest reports as skipped (the tests'
 * SKIP_RETURN_CODE), so a skip never reads as a pass.
 */
#ifndef LORASWEEP_TESTING_H
#define LORASWEEP_TESTING_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Set when a test of this program skipped (see test_exit_status). */
static int testing_skipped;

/* Path of a file under ../shared, e.g. shared_path("data/lotka_volterra_data.h5"). Skips or
 * fails the current test when the file is missing (see above). */
static inline const char *shared_path(const char *rel) {
    static char path[4096];
    const char *dir = getenv("LS_SHARED_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : LS_SHARED_DIR, rel);
    if (access(path, R_OK) != 0) {
        const char *req = getenv("LS_REQUIRE_SHARED");
        if (req && strcmp(req, "1") == 0) fail_msg("required reference file missing: %s", path);
        print_message("skipped: %s not found (set LS_SHARED_DIR)\n", path);
        testing_skipped = 1;
        skip();
    }
    return path;
}

/* What main returns after cmocka_run_group_tests (failed: its result): 1 when a test failed or
 * an HDF5 object was left open (a missing close on some path of ours, which the leak checker
 * cannot tell from HDF5's own memory), else 77 when one skipped, else 0. */
int ls_hdf5_open_objects(char *names, size_t cap);
static inline int test_exit_status(int failed) {
    char names[512];
    int open = ls_hdf5_open_objects(names, sizeof names);
    if (open) fprintf(stderr, "FAIL: %d HDF5 object%s left open: %s\n", open, open == 1 ? "" : "s", names);
    return failed || open ? 1 : testing_skipped ? 77 : 0;
}

/* A fresh temporary directory for the test's files (removed by the OS's tmp cleaning). */
static inline const char *temp_dir(void) {
    static char dir[] = "/tmp/lorasweep-test-XXXXXX";
    static int made = 0;
    if (!made) {
        assert_non_null(mkdtemp(dir));
        made = 1;
    }
    return dir;
}

/* Mutation fuzzing: a copy of base (n bytes) with 1-4 random edits (a random byte, a cut, a
 * deletion, a byte of `alphabet`, an inserted byte of it), in a buffer of exactly *len bytes
 * with no NUL after it, so that ASan sees any read past the end. Deterministic per *seed. */
static inline char *mutated_copy(const char *base, size_t n, const char *alphabet, unsigned *seed, size_t *len_out) {
    size_t len = n, n_alpha = strlen(alphabet);
    char *buf = malloc(n + 64);
    memcpy(buf, base, n);
    int edits = 1 + (int)(rand_r(seed) % 4);
    for (int e = 0; e < edits && len > 0; e++) {
        size_t at = (size_t)rand_r(seed) % len;
        switch (rand_r(seed) % 5) {
        case 0: buf[at] = (char)(rand_r(seed) & 0xFF); break;
        case 1: len = at; break;
        case 2: memmove(buf + at, buf + at + 1, len - at - 1), len--; break;
        case 3: buf[at] = alphabet[(size_t)rand_r(seed) % n_alpha]; break;
        case 4:
            if (len < n + 60) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = alphabet[(size_t)rand_r(seed) % n_alpha];
                len++;
            }
            break;
        }
    }
    char *exact = malloc(len ? len : 1);
    memcpy(exact, buf, len);
    free(buf);
    *len_out = len;
    return exact;
}

#endif
