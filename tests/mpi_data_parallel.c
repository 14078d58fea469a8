/*
 * mpi_data_parallel.c: data-parallel training over 2 MPI ranks (ctest runs it under mpirun -np 2)
 * on the toy model. Every rank also trains alone, single-process, as the reference:
 *  - batch 4 over 2 ranks (2 windows each), and batch 3 (uneven shares 1 + 2), give the losses,
 *    validation losses and adapter of one process with the same batch, to TOL;
 *  - both ranks end with the same adapter and optimiser state, bit for bit, and a rerun repeats
 *    them bit for bit;
 *  - a stop asked on one rank only stops both at the same step; the checkpoint written by rank 0
 *    alone, loaded by both, continues to the same adapter as the run never stopped, bit for bit;
 *  - a checkpoint failing on rank 1 only fails the run on both.
 *
 * TOL: the group sums the two shares' gradients (in double, rounded to float once), where one
 * process accumulates all four windows inside one BLAS product in float; the order of the float
 * additions differs, so the results differ by rounding, which AdamW's normalised steps carry
 * along without growing much over 12 steps. Observed (the "max differences" line this test
 * prints): adapter 6e-8, training loss 2.4e-7 (one float ulp at 3.4), validation loss 0. TOL =
 * 1e-6 is 4 ulps of the loss; a group that forgets to sum a gradient misses it by far.
 * Rank 0 prints "N passed, M failed".
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lorasweep/common.h"
#include "lorasweep/sweep.h"
#include "lorasweep/train.h"
#include "toy_model.h"

#define TOL 1e-6
enum { CTX = 8, STEPS = 12 };

static int passes, fails, rank;
#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (cond) passes++;                                              \
        else {                                                           \
            fails++;                                                     \
            fprintf(stderr, "FAIL rank %d %s:%d: ", rank, __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                \
            fprintf(stderr, "\n");                                       \
        }                                                                \
    } while (0)

/* The learnable stream of toy_model.h, in windows of CTX. */
static void pattern_windows(ls_window_set *w, int n_tokens, int offset) { toy_pattern_windows(w, CTX, n_tokens, offset); }

static ls_train_options options(int batch) {
    return (ls_train_options){
        .batch_size = batch, .max_steps = STEPS, .optimizer = LS_OPTIMIZER_ADAMW, .lr = 1e-2f, .beta1 = 0.9f,
        .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f, .grad_clip = 1.0f, .schedule = LS_SCHEDULE_COSINE,
        .warmup_steps = 2, .min_lr_ratio = 0.1f, .eval_every = 4, .seed = 11, .pad_id = 1,
    };
}

static ls_model model;
static ls_window_set train_w, val_w;

typedef struct {
    ls_lora lora;
    ls_train_state st;
} run_out;

static void run_free(run_out *r) {
    ls_train_state_free(&r->st);
    ls_lora_free(&r->lora);
}

/* Hooks: rank 0 may ask to stop after some step (the other rank never asks), checkpoints go to
 * dir from rank 0 only, and fail_rank's checkpoint hook fails. */
typedef struct {
    const char *dir;
    int stop_after, step_seen, fail_rank;
} hook_ctx;
static void track(void *ctx, const ls_train_progress *p) { ((hook_ctx *)ctx)->step_seen = p->step; }
static int stop_now(void *ctx) {
    hook_ctx *h = ctx;
    return rank == 0 && h->stop_after > 0 && h->step_seen >= h->stop_after;
}
static int save(void *ctx, const ls_train_state *st, const ls_lora *lora) {
    hook_ctx *h = ctx;
    if (rank == h->fail_rank) return ls_error("rank %d: no room for the checkpoint (on purpose)", rank);
    if (rank != 0 || !h->dir) return LS_OK;
    return ls_train_checkpoint_save(h->dir, st, lora, &toy_config);
}

/* A fresh adapter trained with batch `batch`, alone or with the group; *rc gets the run's status. */
static void train(run_out *r, int batch, const ls_train_group *group, const ls_train_hooks *hooks, int *rc) {
    ls_lora_init(&r->lora, &toy_config, 4, 8.0f, (1u << LS_PROJ_Q) | (1u << LS_PROJ_V), 1);
    ls_lora_reset(&r->lora, &toy_config, 5);
    ls_train_options o = options(batch);
    ls_train_state_init(&r->st, &r->lora, &toy_config, o.max_steps);
    int got = ls_train_run(ls_backend_cpu(), &model, &r->lora, &train_w, &val_w, &o, &r->st, hooks, group);
    if (rc) *rc = got;
    else CHECK(got == LS_OK, "training failed: %s", ls_last_error());
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Does every rank hold the same bytes as rank 0? */
static int same_everywhere(const void *p, size_t bytes) {
    char *lead = malloc(bytes);
    memcpy(lead, p, bytes);
    MPI_Bcast(lead, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = memcmp(lead, p, bytes) == 0, all = 0;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    free(lead);
    return all;
}

/* The group run against one process with the same global batch. */
static void compare_with_single(int batch, const ls_train_group *group) {
    run_out alone = {0}, dp = {0}, again = {0};
    train(&alone, batch, NULL, NULL, NULL);
    train(&dp, batch, group, NULL, NULL);
    size_t n = alone.lora.arena_floats;
    double d_w = max_diff(alone.lora.arena, dp.lora.arena, n);
    double d_loss = max_diff(alone.st.train_loss, dp.st.train_loss, STEPS);
    CHECK(dp.st.n_evals == alone.st.n_evals && dp.st.n_evals == 4, "evaluations %d vs %d", dp.st.n_evals, alone.st.n_evals);
    double d_val = max_diff(alone.st.val_loss, dp.st.val_loss, (size_t)alone.st.n_evals);
    if (rank == 0)
        printf("batch %d over %d ranks: max differences from one process: adapter %.3g, train loss %.3g, "
               "val loss %.3g (losses %.4f -> %.4f)\n", batch, group->size, d_w, d_loss, d_val, alone.st.train_loss[0],
               alone.st.train_loss[STEPS - 1]);
    CHECK(d_w <= TOL, "batch %d: adapter differs by %g", batch, d_w);
    CHECK(d_loss <= TOL, "batch %d: training loss differs by %g", batch, d_loss);
    CHECK(d_val <= TOL, "batch %d: validation loss differs by %g", batch, d_val);
    CHECK(dp.st.train_tokens == alone.st.train_tokens, "tokens %g vs %g", dp.st.train_tokens, alone.st.train_tokens);
    CHECK(dp.st.step == STEPS && dp.st.epoch == alone.st.epoch && dp.st.cursor == alone.st.cursor,
          "position: step %d epoch %d cursor %d", dp.st.step, dp.st.epoch, dp.st.cursor);
    /* replicas: the same bits on both ranks, and again on a rerun */
    CHECK(same_everywhere(dp.lora.arena, sizeof(float) * n), "batch %d: the ranks' adapters differ", batch);
    CHECK(same_everywhere(dp.st.m.arena, sizeof(float) * n) && same_everywhere(dp.st.v.arena, sizeof(float) * n),
          "batch %d: the ranks' optimiser moments differ", batch);
    CHECK(same_everywhere(dp.st.train_loss, sizeof(float) * STEPS), "batch %d: the ranks' losses differ", batch);
    train(&again, batch, group, NULL, NULL);
    CHECK(!memcmp(again.lora.arena, dp.lora.arena, sizeof(float) * n), "batch %d: a rerun differs", batch);
    run_free(&alone), run_free(&dp), run_free(&again);
}

/* Stopped on rank 0's word after step 5, checkpointed by rank 0, resumed by both: the same adapter
 * as the run never stopped. */
static void resume_is_exact(const ls_train_group *group, const char *dir) {
    run_out straight = {0}, first = {0}, resumed = {0};
    train(&straight, 4, group, NULL, NULL);
    hook_ctx hc = {dir, 5, 0, -1};
    ls_train_hooks hooks = {track, save, stop_now, &hc};
    train(&first, 4, group, &hooks, NULL);
    CHECK(first.st.step == 5, "stopped at step %d, not 5 (rank 1 never asked)", first.st.step);
    MPI_Barrier(MPI_COMM_WORLD); /* rank 0's checkpoint is on disk */
    ls_lora_init(&resumed.lora, &toy_config, 4, 8.0f, (1u << LS_PROJ_Q) | (1u << LS_PROJ_V), 1);
    ls_train_options o = options(4);
    ls_train_state_init(&resumed.st, &resumed.lora, &toy_config, o.max_steps);
    CHECK(ls_train_checkpoint_load(dir, &resumed.st, &resumed.lora, &toy_config) == LS_OK, "load: %s", ls_last_error());
    CHECK(resumed.st.step == 5, "the checkpoint is at step %d", resumed.st.step);
    hc.stop_after = 0;
    CHECK(ls_train_run(ls_backend_cpu(), &model, &resumed.lora, &train_w, &val_w, &o, &resumed.st, &hooks, group) == LS_OK,
          "resumed run: %s", ls_last_error());
    size_t n = straight.lora.arena_floats;
    CHECK(!memcmp(resumed.lora.arena, straight.lora.arena, sizeof(float) * n), "resumed adapter differs");
    CHECK(!memcmp(resumed.st.train_loss, straight.st.train_loss, sizeof(float) * STEPS), "resumed losses differ");
    CHECK(resumed.st.n_evals == straight.st.n_evals &&
              !memcmp(resumed.st.val_loss, straight.st.val_loss, sizeof(float) * (size_t)straight.st.n_evals),
          "resumed validation curve differs");
    run_free(&straight), run_free(&first), run_free(&resumed);
}

/* A checkpoint failing on rank 1 alone fails the run on both ranks (nobody waits forever). */
static void failure_is_shared(const ls_train_group *group) {
    run_out r = {0};
    hook_ctx hc = {NULL, 0, 0, 1};
    ls_train_hooks hooks = {track, save, NULL, &hc};
    int rc = LS_OK;
    train(&r, 4, group, &hooks, &rc);
    CHECK(rc == LS_ERR, "a failed checkpoint on rank 1 gave %d on rank %d", rc, rank);
    if (rank == 0) CHECK(strstr(ls_last_error(), "another rank"), "rank 0's message: %s", ls_last_error());
    if (rank == 1) CHECK(strstr(ls_last_error(), "on purpose"), "rank 1's message: %s", ls_last_error());
    run_free(&r);
}

int main(int argc, char **argv) {
    ls_sweep_place place;
    if (ls_sweep_mpi_init(&argc, &argv, &place) != LS_OK) return 1;
    rank = place.rank;
    toy_model(&model, &toy_config); /* the same random model on every rank: the same seed */
    pattern_windows(&train_w, 90, 0); /* 22 windows: batches cross epoch boundaries */
    pattern_windows(&val_w, 30, 3);   /* 7 windows: uneven shares (3 + 4) */
    ls_train_group *group = ls_sweep_group_world();
    CHECK(group->size == 2, "run it with 2 ranks (it has %d)", group->size);

    char dir[] = "/tmp/lorasweep-dp-XXXXXX";
    if (rank == 0 && !mkdtemp(dir)) CHECK(0, "mkdtemp");
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);

    compare_with_single(4, group); /* 2 + 2 windows */
    compare_with_single(3, group); /* 1 + 2: uneven shares, weighted by their target tokens */
    resume_is_exact(group, dir);
    failure_is_shared(group);

    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        char path[64];
        snprintf(path, sizeof path, "%s/state.safetensors", dir);
        unlink(path);
        rmdir(dir);
    }
    ls_sweep_group_free(group);
    ls_window_set_free(&train_w);
    ls_window_set_free(&val_w);
    ls_model_free(&model);
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%d passed, %d failed\n", passes, fails);
    ls_sweep_mpi_finalize();
    return fails ? 1 : 0;
}
