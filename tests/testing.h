/*
 * testing.h: what every cmocka test file includes. Paths to the shared reference files and a
 * rule for when they are missing: skip, unless LS_REQUIRE_SHARED=1 (CI), then fail.
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
        skip();
    }
    return path;
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

#endif
