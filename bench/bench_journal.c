/*
 * bench_journal.c: how long replaying a sweep's journal takes (what `sweep run` does on every
 * resume and `report` on every look) as the number of distinct trials grows. Writes journals of
 * N trials with a start, two progress records and a done record each (4N records, appended by
 * ls_journal_append with fsync, so writing them is the slow part), then times ls_journal_replay.
 *
 *   build/bench/bench_journal [--dir DIR] [N ...]        (default N: 20000 40000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lorasweep/common.h"
#include "lorasweep/journal.h"

/* The records of n trials, framed, written in one go (replay reads bytes, however they came). */
static int write_journal(const char *path, int n) {
    char jpath[4200];
    ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
    FILE *f = fopen(jpath, "wb");
    if (!f) return ls_error("%s: cannot create", jpath);
    fwrite(LS_JOURNAL_MAGIC, 1, LS_JOURNAL_MAGIC_LEN, f);
    unsigned char buf[LS_JOURNAL_RECORD_MAX + 8];
    ls_journal_record r = {.type = LS_JREC_SWEEP_START, .time = 1.0, .grid_hash = 42};
    fwrite(buf, 1, ls_journal_encode(&r, buf, sizeof buf), f);
    for (int i = 0; i < n; i++) {
        uint64_t id = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        ls_journal_record s = {.type = LS_JREC_TRIAL_START, .time = 2.0, .trial_id = id, .attempt = 1, .rank = 1};
        fwrite(buf, 1, ls_journal_encode(&s, buf, sizeof buf), f);
        for (int k = 1; k <= 2; k++) {
            ls_journal_record p = {.type = LS_JREC_TRIAL_PROGRESS, .time = 3.0, .trial_id = id, .step = 10 * k,
                                   .loss = 1.0 / k, .val_loss = 1.5 / k};
            fwrite(buf, 1, ls_journal_encode(&p, buf, sizeof buf), f);
        }
        ls_journal_record d = {.type = LS_JREC_TRIAL_DONE, .time = 4.0, .trial_id = id};
        ls_result_metrics_init(&d.metrics);
        d.metrics.steps = 20, d.metrics.final_val_loss = 0.5;
        fwrite(buf, 1, ls_journal_encode(&d, buf, sizeof buf), f);
    }
    return fclose(f) == 0 ? LS_OK : ls_error("%s: write failed", jpath);
}

int main(int argc, char **argv) {
    const char *dir = "/tmp";
    int sizes[16], n_sizes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (n_sizes < 16 && atoi(argv[i]) > 0) sizes[n_sizes++] = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: bench_journal [--dir DIR] [N ...]\n");
            return 2;
        }
    }
    if (!n_sizes) sizes[n_sizes++] = 20000, sizes[n_sizes++] = 40000;
    for (int k = 0; k < n_sizes; k++) {
        char path[4096], jpath[4200];
        snprintf(path, sizeof path, "%s/bench_journal_%d.h5", dir, (int)getpid());
        if (write_journal(path, sizes[k]) != LS_OK) {
            fprintf(stderr, "bench_journal: %s\n", ls_last_error());
            return 1;
        }
        ls_journal_paths(path, jpath, sizeof jpath, NULL, 0);
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            ls_journal_state st;
            double t0 = ls_now();
            if (ls_journal_replay(jpath, &st) != LS_OK || st.n_trials != sizes[k]) {
                fprintf(stderr, "bench_journal: replay: %s\n", ls_last_error());
                return 1;
            }
            double t = ls_now() - t0;
            if (t < best) best = t;
            ls_journal_state_free(&st);
        }
        printf("{\"trials\": %d, \"records\": %d, \"replay_seconds\": %.4f, \"us_per_record\": %.3f}\n", sizes[k],
               4 * sizes[k] + 1, best, 1e6 * best / (4 * sizes[k] + 1));
        remove(jpath);
    }
    return 0;
}
