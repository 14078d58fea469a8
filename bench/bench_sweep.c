/*
 * bench_sweep.c: the scheduler's own cost per trial. Trivial trials (no work, one heartbeat) are
 * handed out to every worker; the time per trial is what the protocol adds to each real one.
 *
 *   mpirun -np 4 build/bench/bench_sweep [--trials N] [--payload BYTES]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"
#include "lorasweep/sweep.h"

static int run_nothing(void *user, const ls_sweep_item *item, const struct ls_train_group *group,
                       void (*heartbeat)(void *, const ls_trial_heartbeat *), int (*should_stop)(void *), void *ctx,
                       ls_trial_summary *out) {
    ls_trial_heartbeat hb = {1, 1, 0, 0, 0, 0};
    heartbeat(ctx, &hb);
    (void)should_stop(ctx);
    out->status = LS_TRIAL_DONE;
    return LS_OK;
}

static int results;
static void count(void *u, const ls_sweep_item *it, int w, const ls_trial_summary *s) { results++; }

int main(int argc, char **argv) {
    ls_sweep_place place;
    if (ls_sweep_mpi_init(&argc, &argv, &place) != LS_OK) return 1;
    int n = 20000, payload = 2000, c;
    static const struct option opts[] = {{"trials", required_argument, 0, 't'}, {"payload", required_argument, 0, 'p'}, {0, 0, 0, 0}};
    while ((c = getopt_long(argc, argv, "t:p:", opts, NULL)) != -1) {
        if (c == 't') n = atoi(optarg) > 0 ? atoi(optarg) : n;
        if (c == 'p') payload = atoi(optarg) >= 0 ? atoi(optarg) : payload;
    }
    if (place.size < 2) {
        fprintf(stderr, "bench_sweep: run it under mpirun with 2 or more ranks\n");
        ls_sweep_mpi_finalize();
        return 2;
    }
    ls_sweep_barrier();
    double t0 = ls_now();
    if (place.rank == 0) {
        /* a payload the size of a real trial's YAML */
        char *text = ls_malloc((size_t)payload + 1);
        memset(text, 'x', (size_t)payload);
        text[payload] = '\0';
        ls_sweep_item *items = ls_malloc(sizeof *items * (size_t)n);
        for (int i = 0; i < n; i++) items[i] = (ls_sweep_item){(uint64_t)i, i, (double)(i % 97), text, 0};
        ls_sweep_hooks hooks = {NULL, NULL, count, NULL, NULL, 0, NULL};
        ls_sweep_schedule(items, n, 1, &hooks, NULL);
        double s = ls_now() - t0;
        printf("{\"ranks\": %d, \"workers\": %d, \"trials\": %d, \"payload_bytes\": %d, \"seconds\": %.4f,\n"
               " \"trials_per_second\": %.0f, \"scheduler_us_per_trial\": %.1f}\n",
               place.size, place.size - 1, results, payload, s, n / s, 1e6 * s / n);
        free(items);
        free(text);
    } else {
        ls_sweep_work(run_nothing, NULL, &place, 1);
    }
    ls_sweep_mpi_finalize();
    return 0;
}
