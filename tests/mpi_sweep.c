/*
 * mpi_sweep.c: the scheduler/worker protocol with real MPI ranks (ctest runs it under mpirun -np 3)
 * and trivial trials: every trial runs exactly once, the largest cost goes first, heartbeats
 * arrive, failures come back with their message, and a stop request interrupts busy workers and
 * hands out nothing more. Rounds 2 and 3 repeat both with the 2 workers as one data-parallel group
 * (ranks_per_trial 2): rank 0 sees only the leader, every rank of the group runs each item, and a
 * stop reaches the whole group. Round 4 hands out work that appears as results come in
 * (ls_sweep_schedule_next, as early stopping does): a free worker waits until a result makes
 * work, a pause step reaches the worker and comes back paused; round 5: a source that says "wait"
 * with nothing running releases every worker instead of hanging. Rank 0 prints "N passed, M failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lorasweep/common.h"
#include "lorasweep/gpu.h"
#include "lorasweep/sweep.h"
#include "lorasweep/train.h"

enum { N_ITEMS = 24 };
static int passes, fails;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) passes++;                                \
        else {                                             \
            fails++;                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fprintf(stderr, "\n");                         \
        }                                                  \
    } while (0)

static void sleep_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* Worker: "train" for a few ms, beating; item 7 fails; in the stop round, run until told. In a
 * group (rounds 2 and 3) every rank runs the item: they check that they got the same one, and
 * agree on stopping as the trainer does. */
static int run_trivial(void *user, const ls_sweep_item *item, const ls_train_group *group,
                       void (*heartbeat)(void *, const ls_trial_heartbeat *), int (*should_stop)(void *), void *ctx,
                       ls_trial_summary *out) {
    int stop_round = *(int *)user;
    int steps = stop_round ? 100000 : 3;
    if (group) {
        double got[2] = {item->index, 1};
        if (group->sum_doubles(group->ctx, got, 2) != LS_OK || got[1] != group->size ||
            got[0] != (double)item->index * group->size)
            return ls_error("the group's ranks run different items (%g for %d)", got[0], item->index);
    }
    for (int s = 1; s <= steps; s++) {
        if (!ls_train_group_agree(group, !should_stop(ctx))) {
            out->status = LS_TRIAL_INTERRUPTED;
            out->metrics.steps = s - 1;
            return LS_OK;
        }
        sleep_us(stop_round ? 1000 : 200);
        ls_trial_heartbeat hb = {s, steps, 1.0 / s, NAN, 100.0, 0};
        heartbeat(ctx, &hb);
    }
    if (!stop_round && item->index == 7) return ls_error("trial 7 fails on purpose");
    out->status = item->pause_step > 0 ? LS_TRIAL_PAUSED : LS_TRIAL_DONE;
    out->metrics.steps = item->pause_step > 0 ? item->pause_step : steps;
    out->metrics.mse[LS_METRIC_BOTH] = atof(item->payload); /* the payload travels intact */
    return LS_OK;
}

typedef struct {
    int results[N_ITEMS], heartbeats[N_ITEMS], started, order[N_ITEMS], workers_used[64];
    int failed, interrupted, stop_after, stop_now, devices_seen, paused, paused_step;
    double mse[N_ITEMS];
    char message[512];
} record;

static void on_start(void *u, const ls_sweep_item *it, int w, const ls_sweep_worker_info *info) {
    int device = info->device;
    record *r = u;
    r->devices_seen |= 1 << (device + 1); /* bit 0: CPU (-1) */
    r->order[r->started++] = it->index;
    r->workers_used[w] = 1;
}
static void on_heartbeat(void *u, const ls_sweep_item *it, int w, const ls_trial_heartbeat *hb) {
    ((record *)u)->heartbeats[it->index]++;
}
static void on_result(void *u, const ls_sweep_item *it, int w, const ls_trial_summary *s) {
    record *r = u;
    r->results[it->index]++;
    r->mse[it->index] = s->metrics.mse[LS_METRIC_BOTH];
    if (s->status == LS_TRIAL_FAILED) r->failed++, snprintf(r->message, sizeof r->message, "%s", s->message);
    if (s->status == LS_TRIAL_INTERRUPTED) r->interrupted++;
    if (s->status == LS_TRIAL_PAUSED) r->paused++, r->paused_step = s->metrics.steps;
}

/* Round 4's source: item 0, then nothing until its result is in (the other worker waits), then
 * items 1 (to pause at step 5) and 2. Round 5's (never): always "wait". */
typedef struct {
    record r; /* first: the hooks take the same pointer */
    ls_sweep_item items[3];
    int given, waits, asked_after_release;
} source;
static int source_next(void *u, const ls_sweep_worker_info *w, ls_sweep_item *it) {
    (void)w;
    source *s = u;
    if (s->given == 0 || (s->r.results[0] && s->given < 3)) {
        *it = s->items[s->given++];
        return 1;
    }
    if (s->given < 3) return s->waits++, 0;
    return -1;
}
static int source_never(void *u, const ls_sweep_worker_info *w, ls_sweep_item *it) {
    (void)w;
    (void)it;
    ((source *)u)->waits++;
    return 0;
}
static int should_stop(void *u) {
    record *r = u;
    return r->stop_after > 0 && r->started >= r->stop_after && (r->stop_now = 1);
}

int main(int argc, char **argv) {
    ls_sweep_place place;
    if (ls_sweep_mpi_init(&argc, &argv, &place) != LS_OK) return 1;
    if (place.rank == 0) { /* GPU binding: ls_gpu_pick_device's cases are in test_gpu.c */
        CHECK(place.local_worker == -1 && place.device == -1, "rank 0 owns no device");
    }
    for (int round = 0; round < 4; round++) {
        int k = round >= 2 && place.size == 3 ? 2 : 1; /* rounds 2, 3: one group of the 2 workers */
        if (round >= 2 && k == 1) break;
        if (place.rank == 0) {
            ls_sweep_item items[N_ITEMS];
            char payloads[N_ITEMS][32];
            for (int i = 0; i < N_ITEMS; i++) {
                snprintf(payloads[i], sizeof payloads[i], "%d.5", i);
                items[i] = (ls_sweep_item){1000 + (uint64_t)i, i, (double)((i * 7) % N_ITEMS), payloads[i], 0};
            }
            record r = {0};
            r.stop_after = round % 2 == 1 ? 3 - k : 0; /* stop once every group is busy */
            ls_sweep_hooks hooks = {on_start, on_heartbeat, on_result, should_stop, &r, 0, NULL};
            int stopped = -1;
            ls_sweep_schedule(items, N_ITEMS, k, &hooks, &stopped);
            if (round % 2 == 0) {
                for (int i = 0; i < N_ITEMS; i++) {
                    CHECK(r.results[i] == 1, "trial %d reported %d times", i, r.results[i]);
                    CHECK(r.heartbeats[i] == 3 || i == 7, "trial %d: %d heartbeats", i, r.heartbeats[i]);
                    if (i != 7) CHECK(r.mse[i] == i + 0.5, "trial %d payload gave %g", i, r.mse[i]);
                }
                /* cost (i*7) % 24 is largest for i = 17 (23), then 10 (22): first handed out */
                CHECK(r.order[0] == 17 && r.order[1] == 10, "dispatch order starts %d, %d", r.order[0], r.order[1]);
                CHECK(r.failed == 1 && strstr(r.message, "on purpose"), "failure: %d, '%s'", r.failed, r.message);
                for (int w = 1; w < place.size; w++)
                    CHECK(r.workers_used[w] == (k == 1 || w == 1), "worker %d: %d (group leader: 1)", w, r.workers_used[w]);
                CHECK(stopped == 0, "stopped without a stop request");
                if (!getenv("CUDA_VISIBLE_DEVICES") && ls_gpu_count_device_files() == 0)
                    CHECK(r.devices_seen == 1, "no GPU here, yet devices %#x", r.devices_seen);
            } else {
                int ran = 0;
                for (int i = 0; i < N_ITEMS; i++) ran += r.results[i];
                CHECK(stopped == 1, "stop not reported");
                CHECK(r.started == (place.size - 1) / k || r.started == 3 - k, "%d trials started after the stop", r.started);
                CHECK(ran == r.started, "%d results for %d started trials", ran, r.started);
                CHECK(r.interrupted == r.started, "%d of %d interrupted", r.interrupted, r.started);
            }
        } else {
            int stop_round = round % 2 == 1;
            ls_sweep_work(run_trivial, &stop_round, &place, k);
        }
        ls_sweep_barrier();
    }
    for (int round = 4; round < 6; round++) {
        if (place.rank == 0) {
            source s = {0};
            char payloads[3][8] = {"0.5", "1.5", "2.5"};
            for (int i = 0; i < 3; i++) s.items[i] = (ls_sweep_item){2000 + (uint64_t)i, i, 1.0, payloads[i], i == 1 ? 5 : 0};
            ls_sweep_hooks hooks = {on_start, on_heartbeat, on_result, NULL, &s, 0, NULL};
            int stopped = -1;
            ls_sweep_schedule_next(round == 4 ? source_next : source_never, 1, &hooks, &stopped);
            if (round == 4) {
                for (int i = 0; i < 3; i++) CHECK(s.r.results[i] == 1, "dynamic item %d reported %d times", i, s.r.results[i]);
                CHECK(s.r.order[0] == 0 && s.given == 3, "dynamic order %d, %d given", s.r.order[0], s.given);
                CHECK(place.size < 3 || s.waits >= 1, "the second worker never waited (%d)", s.waits);
                CHECK(s.r.paused == 1 && s.r.paused_step == 5, "pause step: %d paused at %d", s.r.paused, s.r.paused_step);
                CHECK(s.r.mse[2] == 2.5, "dynamic payload gave %g", s.r.mse[2]);
            } else {
                CHECK(s.r.started == 0 && s.waits >= 1, "never: %d started, %d waits", s.r.started, s.waits);
            }
            CHECK(stopped == 0, "dynamic round %d stopped", round);
        } else {
            int stop_round = 0;
            ls_sweep_work(run_trivial, &stop_round, &place, 1);
        }
        ls_sweep_barrier();
    }
    if (place.rank == 0) printf("%d passed, %d failed\n", passes, fails);
    ls_sweep_broadcast_int(&fails);
    ls_sweep_mpi_finalize();
    return fails ? 1 : 0;
}
