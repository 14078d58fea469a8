/*
 * mpi_results.c: the parallel-HDF5 results file under MPI (ctest runs it with mpirun -np 3).
 * Plain checks with MPI_Abort on failure (cmocka does not know about ranks); rank 0 prints
 * "N passed, 0 failed" at the end.
 *
 * All ranks create the file collectively, ranks 1 and 2 write different trials' rows
 * independently, a second stage appends trials and widens the curves, the file is closed and
 * reopened and rank 0 reads everything back exactly. Then: a different grid hash is refused, a
 * truncated, garbage or foreign HDF5 file gives a clear error, and with LS_RESULTS_REBUILD it is moved aside and
 * rebuilt from the journal. The main file is also copied to results_test.h5 in the working
 * directory (or to argv[1]) for the h5py and h5dump checks (tests/results_h5py.sh).
 */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lorasweep/common.h"
#include "lorasweep/data.h"
#include "lorasweep/journal.h"
#include "lorasweep/results.h"

static int rank, n_checks;

#define CHECK(cond) \
    do { \
        n_checks++; \
        if (!(cond)) { \
            fprintf(stderr, "rank %d: %s:%d: check failed: %s (last error: %s)\n", rank, __FILE__, __LINE__, #cond, \
                    ls_last_error()); \
            fflush(stderr); \
            MPI_Abort(MPI_COMM_WORLD, 1); \
        } \
    } while (0)

#define GRID_HASH 0x0123456789abcdefull
#define N_SYS 2
#define N_H 3

static const ls_results_meta meta = {"test-sweep", "base: {}\ngrid:\n  train.lr: [1e-4, 1e-3]\n", GRID_HASH,
                                     "data/lv.h5", 0x1122334455667788ull, 0};

static void make_specs(ls_results_trial_spec *s, int n, uint64_t first_id, int stage, int max_steps) {
    for (int i = 0; i < n; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].id = first_id + (uint64_t)i;
        s[i].stage = stage;
        s[i].config_yaml = i == 0 ? "name: t0\ntrain:\n  lr: 0.001\n" : "name: other\n";
        s[i].lr = 1e-4 * (i + 1);
        s[i].lora_rank = 2 << i;
        s[i].ctx = 128 * (i + 1);
        s[i].batch_size = 4;
        s[i].max_steps = max_steps + i;
        s[i].max_evals = 3;
        s[i].forecast_systems = N_SYS;
        s[i].forecast_steps = N_H;
    }
}

/* The values trial `id` gets: a function of id, step and index so reading back is exact. */
static float loss_of(uint64_t id, int step) { return (float)(id % 100) + 0.125f * (float)step; }
static float fc_of(uint64_t id, int k, int which) { return (float)(id % 100) * 10.0f + (float)k + 0.5f * (float)which; }

static ls_result_metrics metrics_of(uint64_t id) {
    ls_result_metrics m;
    ls_result_metrics_init(&m);
    m.steps = (int)(id % 7) + 1;
    m.final_train_loss = 1.0 + (double)(id % 100);
    m.final_val_loss = 2.0 + (double)(id % 100);
    for (int i = 0; i < LS_METRIC_COUNT; i++) {
        m.mse[i] = 0.1 * (i + 1) + (double)(id % 100);
        m.mae[i] = 0.01 * (i + 1) + (double)(id % 100);
    }
    m.flops_train = 1e15;
    m.flops_validation = 1e13;
    m.flops_forecast = 1e12;
    m.flops_total = 1.011e15;
    m.wall_seconds = 3.25;
    m.tokens_per_s = 1000.0 + (double)(id % 100);
    return m;
}

/* Field by field (the struct has padding); exact, NaN equal to NaN. */
static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }
static int metrics_equal(const ls_result_metrics *a, const ls_result_metrics *b) {
    int eq = a->steps == b->steps && same(a->final_train_loss, b->final_train_loss) &&
             same(a->final_val_loss, b->final_val_loss) && same(a->flops_train, b->flops_train) &&
             same(a->flops_validation, b->flops_validation) && same(a->flops_forecast, b->flops_forecast) &&
             same(a->flops_total, b->flops_total) && same(a->wall_seconds, b->wall_seconds) &&
             same(a->tokens_per_s, b->tokens_per_s);
    for (int i = 0; i < LS_METRIC_COUNT; i++) eq = eq && same(a->mse[i], b->mse[i]) && same(a->mae[i], b->mae[i]);
    return eq;
}

/* A worker writes everything of its trial, the way a sweep worker does. */
static void write_trial(ls_results *r, uint64_t id, int steps, ls_result_status status, const char *msg) {
    float loss[64];
    for (int s = 0; s < steps; s++) loss[s] = loss_of(id, s + 1);
    /* In two pieces, as a worker streaming progress would. */
    CHECK(ls_results_write_train_loss(r, id, 1, steps / 2, loss) == LS_OK);
    CHECK(ls_results_write_train_loss(r, id, steps / 2 + 1, steps - steps / 2, loss + steps / 2) == LS_OK);
    int vs[2] = {0, steps};
    float vl[2] = {loss_of(id, 0) + 1.0f, loss_of(id, steps) + 1.0f};
    CHECK(ls_results_write_evals(r, id, 2, vs, vl) == LS_OK);
    ls_result_metrics m = metrics_of(id);
    CHECK(ls_results_write_metrics(r, id, &m) == LS_OK);
    ls_forecast f = {0};
    int system[N_SYS] = {7, 9};
    float mean[N_SYS * N_H * 2], sd[N_SYS * N_H * 2], truth[N_SYS * N_H * 2];
    for (int k = 0; k < N_SYS * N_H * 2; k++) {
        mean[k] = fc_of(id, k, 0);
        sd[k] = fc_of(id, k, 1);
        truth[k] = fc_of(id, k, 2);
    }
    f.n_systems = N_SYS;
    f.steps = N_H;
    f.system = system;
    f.mean = mean;
    f.std = sd;
    f.truth = truth;
    CHECK(ls_results_write_forecast(r, id, &f) == LS_OK);
    CHECK(ls_results_write_status(r, id, status, msg) == LS_OK);
}

static void check_trial(ls_results *r, uint64_t id, int steps, int width, ls_result_status status, const char *msg) {
    ls_results_row_data row;
    CHECK(ls_results_read_row(r, id, &row) == LS_OK);
    ls_result_metrics m = metrics_of(id);
    CHECK(row.status == status);
    CHECK(strcmp(row.error, msg) == 0);
    CHECK(metrics_equal(&row.metrics, &m));
    float loss[64];
    int n = 0;
    CHECK(ls_results_read_train_loss(r, id, loss, 64, &n) == LS_OK);
    CHECK(n == width);
    for (int s = 0; s < n; s++) CHECK(s < steps ? loss[s] == loss_of(id, s + 1) : isnan(loss[s]));
    int vs[8];
    float vl[8];
    CHECK(ls_results_read_evals(r, id, vs, vl, 8, &n) == LS_OK);
    CHECK(n == 3);
    CHECK(vs[0] == 0 && vs[1] == steps && vs[2] == -1);
    CHECK(vl[0] == loss_of(id, 0) + 1.0f && vl[1] == loss_of(id, steps) + 1.0f && isnan(vl[2]));
    int S, H, *system;
    float *mean, *sd, *truth;
    CHECK(ls_results_read_forecast(r, id, &S, &H, &system, &mean, &sd, &truth) == LS_OK);
    CHECK(S == N_SYS && H == N_H);
    CHECK(system[0] == 7 && system[1] == 9);
    for (int k = 0; k < N_SYS * N_H * 2; k++)
        CHECK(mean[k] == fc_of(id, k, 0) && sd[k] == fc_of(id, k, 1) && truth[k] == fc_of(id, k, 2));
    free(system);
    free(mean);
    free(sd);
    free(truth);
}

static void check_pending(ls_results *r, uint64_t id, const ls_results_trial_spec *spec, int width) {
    ls_results_row_data row;
    CHECK(ls_results_read_row(r, id, &row) == LS_OK);
    CHECK(row.status == LS_RESULT_PENDING && row.error[0] == '\0');
    CHECK(row.stage == spec->stage && row.lr == spec->lr && row.lora_rank == spec->lora_rank && row.ctx == spec->ctx &&
          row.batch_size == spec->batch_size && row.max_steps == spec->max_steps);
    CHECK(isnan(row.metrics.final_train_loss) && isnan(row.metrics.mse[2]) && row.metrics.steps == -1);
    float loss[64];
    int n;
    CHECK(ls_results_read_train_loss(r, id, loss, 64, &n) == LS_OK && n == width);
    for (int s = 0; s < n; s++) CHECK(isnan(loss[s]));
    char *yaml = ls_results_read_config(r, id);
    CHECK(yaml && strcmp(yaml, spec->config_yaml) == 0);
    free(yaml);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size >= 3);
    char dir[256] = "/tmp/lorasweep-mpi-XXXXXX";
    if (rank == 0) CHECK(mkdtemp(dir) != NULL);
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    char path[512];
    snprintf(path, sizeof path, "%s/results.h5", dir);

    /* ---- create, stage 0: four trials */
    ls_results *r;
    ls_results_how how;
    CHECK(ls_results_open(MPI_COMM_WORLD, path, &meta, 0, &r, &how) == LS_OK);
    CHECK(how == LS_RESULTS_CREATED);
    ls_results_trial_spec s0[4], s1[2];
    make_specs(s0, 4, 0xa0, 0, 6); /* max_steps 6..9 */
    CHECK(ls_results_add_trials(r, s0, 4) == LS_OK);
    CHECK(ls_results_n_trials(r) == 4 && ls_results_row(r, 0xa2) == 2 && ls_results_id(r, 3) == 0xa3);
    /* rank 1: trials a0 (done) and a2 (failed); rank 2: a1 (done); a3 stays pending */
    if (rank == 1) {
        write_trial(r, 0xa0, 6, LS_RESULT_DONE, "");
        write_trial(r, 0xa2, 8, LS_RESULT_FAILED, "NaN loss at step 8");
        CHECK(ls_results_write_train_loss(r, 0xa0, 1, 10, (const float[10]){0}) == LS_ERR); /* no room */
        CHECK(strstr(ls_last_error(), "no room") != NULL);
        CHECK(ls_results_write_status(r, 0xbad, LS_RESULT_DONE, NULL) == LS_ERR);
    }
    if (rank == 2) write_trial(r, 0xa1, 7, LS_RESULT_DONE, "");
    /* ---- stage 1: a repeated trial (kept as is) and a new one with more steps (wider curves) */
    make_specs(s1, 2, 0xb0, 1, 12);
    s1[0].id = 0xa1;
    CHECK(ls_results_add_trials(r, s1, 2) == LS_OK);
    CHECK(ls_results_n_trials(r) == 5 && ls_results_row(r, 0xb1) == 4);
    if (rank == 2) write_trial(r, 0xb1, 13, LS_RESULT_DONE, "");
    CHECK(ls_results_flush(r) == LS_OK);
    CHECK(ls_results_close(r) == LS_OK);

    /* ---- reopen, read back with rank 0 */
    CHECK(ls_results_open(MPI_COMM_WORLD, path, &meta, 0, &r, &how) == LS_OK);
    CHECK(how == LS_RESULTS_OPENED && ls_results_n_trials(r) == 5);
    if (rank == 0) {
        check_trial(r, 0xa0, 6, 13, LS_RESULT_DONE, "");
        check_trial(r, 0xa1, 7, 13, LS_RESULT_DONE, "");
        check_trial(r, 0xa2, 8, 13, LS_RESULT_FAILED, "NaN loss at step 8");
        check_trial(r, 0xb1, 13, 13, LS_RESULT_DONE, "");
        check_pending(r, 0xa3, &s0[3], 13);
        ls_results_row_data row;
        CHECK(ls_results_read_row(r, 0xa1, &row) == LS_OK && row.stage == 0); /* not overwritten by stage 1 */
        CHECK(ls_results_read_row(r, 0xb1, &row) == LS_OK && row.stage == 1 && row.max_steps == 13);
        char *yaml = ls_results_read_config(r, 0xa0);
        CHECK(yaml && strcmp(yaml, s0[0].config_yaml) == 0);
        free(yaml);
        ls_results_info info; /* the file's identity, as report and a resumed sweep read it */
        CHECK(ls_results_read_info(r, &info) == LS_OK);
        CHECK(strcmp(info.sweep_name, meta.sweep_name) == 0 && strcmp(info.grid_text, meta.grid_text) == 0);
        ls_results_info_free(&info);
    }
    CHECK(ls_results_close(r) == LS_OK);
    if (rank == 0) { /* for tests/results_h5py.sh */
        size_t n;
        char *bytes = ls_read_file(path, &n);
        CHECK(bytes != NULL);
        write_file(argc > 1 ? argv[1] : "results_test.h5", bytes, n);
        free(bytes);
    }

    /* ---- many trials in the same chunks: ranks 1 and 2 write alternate rows at the same time */
    {
        enum { MANY = 100 };
        ls_results_trial_spec many[MANY];
        make_specs(many, 1, 0x1000, 2, 4);
        for (int i = 1; i < MANY; i++) {
            many[i] = many[0];
            many[i].id = 0x1000 + (uint64_t)i;
        }
        CHECK(ls_results_open(MPI_COMM_WORLD, path, &meta, 0, &r, &how) == LS_OK);
        CHECK(ls_results_add_trials(r, many, MANY) == LS_OK);
        CHECK(ls_results_n_trials(r) == 5 + MANY);
        if (rank >= 1)
            for (int i = rank - 1; i < MANY; i += 2) {
                ls_result_metrics m = metrics_of(many[i].id);
                float loss[4] = {1, 2, 3, (float)i};
                CHECK(ls_results_write_metrics(r, many[i].id, &m) == LS_OK);
                CHECK(ls_results_write_train_loss(r, many[i].id, 1, 4, loss) == LS_OK);
                CHECK(ls_results_write_status(r, many[i].id, LS_RESULT_DONE, i % 3 ? "" : "note") == LS_OK);
            }
        CHECK(ls_results_close(r) == LS_OK);
        CHECK(ls_results_open(MPI_COMM_WORLD, path, &meta, LS_RESULTS_READONLY, &r, &how) == LS_OK);
        if (rank == 0) {
            for (int i = 0; i < MANY; i++) {
                ls_results_row_data row;
                ls_result_metrics m = metrics_of(many[i].id);
                CHECK(ls_results_read_row(r, many[i].id, &row) == LS_OK);
                CHECK(row.status == LS_RESULT_DONE && metrics_equal(&row.metrics, &m));
                CHECK(strcmp(row.error, i % 3 ? "" : "note") == 0 && row.stage == 2);
                float loss[16];
                int n;
                CHECK(ls_results_read_train_loss(r, many[i].id, loss, 16, &n) == LS_OK && n == 13);
                CHECK(loss[0] == 1 && loss[3] == (float)i && isnan(loss[4]));
            }
            check_trial(r, 0xa0, 6, 13, LS_RESULT_DONE, ""); /* earlier rows unchanged */
            check_trial(r, 0xb1, 13, 13, LS_RESULT_DONE, "");
        }
        CHECK(ls_results_close(r) == LS_OK);
    }

    /* ---- another grid: refused on every rank, file untouched */
    ls_results_meta other = meta;
    other.grid_hash = 0xfeedull;
    CHECK(ls_results_open(MPI_COMM_WORLD, path, &other, LS_RESULTS_REBUILD, &r, &how) == LS_ERR);
    CHECK(r == NULL);
    if (rank == 0) CHECK(strstr(ls_last_error(), "belong to another grid") != NULL);
    /* grid hash 0: a reader that accepts any grid */
    other.grid_hash = 0;
    CHECK(ls_results_open(MPI_COMM_WORLD, path, &other, LS_RESULTS_READONLY, &r, &how) == LS_OK);
    CHECK(ls_results_n_trials(r) == 105);
    CHECK(ls_results_add_trials(r, s1, 1) == LS_ERR); /* read-only */
    CHECK(ls_results_close(r) == LS_OK);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.h5", dir);
    CHECK(ls_results_open(MPI_COMM_WORLD, missing, &meta, LS_RESULTS_READONLY, &r, &how) == LS_ERR);
    CHECK(access(missing, F_OK) != 0);

    /* ---- damaged files: truncated, garbage, an HDF5 file that is not ours */
    size_t n = 0;
    char *bytes = rank == 0 ? ls_read_file(path, &n) : NULL;
    char damaged[600];
    snprintf(damaged, sizeof damaged, "%s/damaged.h5", dir);
    for (int kind = 0; kind < 4; kind++) {
        if (rank == 0) {
            if (kind == 0) write_file(damaged, bytes, n / 2);
            if (kind == 1) {
                char junk[4096];
                for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 7 + 3);
                write_file(damaged, junk, sizeof junk);
            }
            if (kind == 2) write_file(damaged, bytes, 512); /* the superblock and little else */
            if (kind == 3) { /* a valid HDF5 file that is not a results file */
                unlink(damaged);
                hid_t f = H5Fcreate(damaged, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
                CHECK(f >= 0 && H5Fclose(f) >= 0);
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK(ls_results_open(MPI_COMM_WORLD, damaged, &meta, 0, &r, &how) == LS_ERR);
        CHECK(r == NULL);
        if (rank == 0)
            CHECK(strstr(ls_last_error(), "damaged") != NULL || strstr(ls_last_error(), "not a lorasweep") != NULL);
        MPI_Barrier(MPI_COMM_WORLD);
    }

    /* ---- rebuild: the damaged file is moved aside, recreated, refilled from the journal */
    ls_journal_state st = {0};
    if (rank == 0) {
        ls_journal *j;
        CHECK(ls_journal_open(damaged, "job-rebuild", &j) == LS_OK);
        ls_result_metrics m = metrics_of(0xa0);
        CHECK(ls_journal_sweep_start(j, GRID_HASH, "job-rebuild") == LS_OK);
        CHECK(ls_journal_trial_start(j, 0xa0, 1, 1, "h", 0) == LS_OK);
        CHECK(ls_journal_trial_done(j, 0xa0, &m) == LS_OK);
        CHECK(ls_journal_trial_start(j, 0xa2, 1, 2, "h", 0) == LS_OK);
        CHECK(ls_journal_trial_failed(j, 0xa2, "NaN loss at step 8") == LS_OK);
        CHECK(ls_journal_trial_start(j, 0xa1, 1, 2, "h", 0) == LS_OK);
        CHECK(ls_journal_close(j) == LS_OK);
        char jpath[700];
        ls_journal_paths(damaged, jpath, sizeof jpath, NULL, 0);
        CHECK(ls_journal_replay(jpath, &st) == LS_OK);
    }
    CHECK(ls_results_open(MPI_COMM_WORLD, damaged, &meta, LS_RESULTS_REBUILD, &r, &how) == LS_OK);
    CHECK(how == LS_RESULTS_REBUILT && ls_results_n_trials(r) == 0);
    CHECK(ls_results_add_trials(r, s0, 4) == LS_OK);
    if (rank == 0) {
        CHECK(ls_results_fill_from_journal(r, &st) == LS_OK);
        /* curves and forecast of the done trial from its own directory, as `lorasweep train` writes them */
        char tdir[700], file[800];
        snprintf(tdir, sizeof tdir, "%s/trial-a0", dir);
        CHECK(ls_mkdirs(tdir) == LS_OK);
        uint64_t id = 0xa0;
        snprintf(file, sizeof file, "%s/curves.csv", tdir);
        FILE *f = fopen(file, "w");
        CHECK(f != NULL);
        fprintf(f, "step,train_loss,val_loss\n0,,%.9g\n", loss_of(id, 0) + 1.0f);
        for (int st_ = 1; st_ <= 6; st_++) {
            fprintf(f, "%d,%.9g,", st_, loss_of(id, st_));
            if (st_ == 6) fprintf(f, "%.9g", loss_of(id, 6) + 1.0f);
            fprintf(f, "\n");
        }
        fclose(f);
        snprintf(file, sizeof file, "%s/forecasts.csv", tdir);
        f = fopen(file, "w");
        CHECK(f != NULL);
        fprintf(f, "system,step,variable,truth,mean,median,std\n");
        const int systems[N_SYS] = {7, 9};
        for (int i = 0; i < N_SYS; i++)
            for (int h = 0; h < N_H; h++)
                for (int v = 0; v < 2; v++) {
                    int k = (i * N_H + h) * 2 + v;
                    fprintf(f, "%d,%d,%s,%.9g,%.9g,%.9g,%.9g\n", systems[i], h, v ? "predator" : "prey",
                            fc_of(id, k, 2), fc_of(id, k, 0), 0.0, fc_of(id, k, 1));
                }
        fclose(f);
        CHECK(ls_results_fill_from_trial_dir(r, 0xa0, tdir) == LS_OK);
        /* a trial without files: nothing to do; a malformed file: file and line named */
        CHECK(ls_results_fill_from_trial_dir(r, 0xa1, dir) == LS_OK);
        snprintf(file, sizeof file, "%s/curves.csv", dir);
        const char *bad = "step,train_loss,val_loss\n1,0.5,\n2,zero,\n";
        write_file(file, bad, strlen(bad));
        CHECK(ls_results_fill_from_trial_dir(r, 0xa1, dir) == LS_ERR);
        CHECK(strstr(ls_last_error(), "curves.csv:3:") != NULL);
        unlink(file);
    }
    CHECK(ls_results_close(r) == LS_OK);
    CHECK(ls_results_open(MPI_COMM_WORLD, damaged, &meta, LS_RESULTS_READONLY, &r, &how) == LS_OK);
    if (rank == 0) {
        ls_results_row_data row;
        ls_result_metrics m = metrics_of(0xa0);
        CHECK(ls_results_read_row(r, 0xa0, &row) == LS_OK && row.status == LS_RESULT_DONE);
        CHECK(metrics_equal(&row.metrics, &m));
        check_trial(r, 0xa0, 6, 9, LS_RESULT_DONE, ""); /* curves and forecast from the trial's files */
        float loss[16];
        int nl;
        CHECK(ls_results_read_train_loss(r, 0xa1, loss, 16, &nl) == LS_OK && nl == 9 && isnan(loss[0]));
        CHECK(ls_results_read_row(r, 0xa2, &row) == LS_OK && row.status == LS_RESULT_FAILED);
        CHECK(strcmp(row.error, "NaN loss at step 8") == 0);
        CHECK(ls_results_read_row(r, 0xa1, &row) == LS_OK && row.status == LS_RESULT_RUNNING);
        CHECK(ls_results_read_row(r, 0xa3, &row) == LS_OK && row.status == LS_RESULT_PENDING);
        /* the damaged file was kept beside it */
        char cmd[900];
        snprintf(cmd, sizeof cmd, "%s.damaged-", damaged);
        int found = 0;
        for (long t = (long)time(NULL) + 1; t > (long)time(NULL) - 120 && !found; t--) {
            char aside[1000];
            snprintf(aside, sizeof aside, "%s%ld", cmd, t);
            found = access(aside, F_OK) == 0;
        }
        CHECK(found);
        ls_journal_state_free(&st);
    }
    CHECK(ls_results_close(r) == LS_OK);
    free(bytes);

    /* checksum helper: FNV-1a 64 of "a" is af63dc4c8601ec8c */
    if (rank == 0) {
        char p[600];
        snprintf(p, sizeof p, "%s/a.txt", dir);
        write_file(p, "a", 1);
        uint64_t h = 0;
        CHECK(ls_results_file_checksum(p, &h) == LS_OK && h == 0xaf63dc4c8601ec8cull);
        CHECK(ls_results_file_checksum("/nonexistent/file", &h) == LS_ERR);
    }

    char open_names[512]; /* every results file and object closed on every path taken above */
    int open = ls_hdf5_open_objects(open_names, sizeof open_names);
    CHECK(open == 0 || (fprintf(stderr, "rank %d: HDF5 objects left open: %s\n", rank, open_names), 0));
    int total = 0;
    MPI_Reduce(&n_checks, &total, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) printf("mpi_results: %d passed, 0 failed (%d ranks)\n", total, size);
    MPI_Finalize();
    return 0;
}
