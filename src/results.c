/*
 * results.c: the sweep's parallel-HDF5 results file. API and the collective/independent rule:
 * include/lorasweep/results.h; schema: docs/results.md.
 *
 * Design decisions:
 *  - One table of datasets (`datasets[]`): name, element type, which sizes its dimensions follow,
 *    fill value, one-line doc (stored as the dataset's "doc" attribute). Creation, extension,
 *    opening and closing all walk the table, so every rank makes the same collective calls in
 *    the same order by construction.
 *  - /trials is a set of 1-D columns of one length (a table pandas reads column by column);
 *    /curves and /forecast have one row per trial in the same order. Every dataset is chunked
 *    with unlimited dimensions, so a later stage appends rows (and widens curves) with
 *    H5Dset_extent instead of new groups: one table for the whole sweep.
 *  - Space is allocated early and filled (NaN, -1, "") when a dataset is created or extended:
 *    an independent write never allocates (which parallel HDF5 cannot do independently), and an
 *    unwritten cell reads as missing. A barrier after each extension keeps a rank's first write
 *    from racing another rank's collective fill of the same chunk.
 *  - No filters (no compression): parallel HDF5 does not cache unfiltered chunks of a file open
 *    for writing, so two ranks writing different rows of one chunk each write only their own
 *    elements (tests/mpi_results.c checks it with 100 trials written alternately by two ranks).
 *    A filtered chunk would be read, changed and rewritten whole, losing the other rank's rows.
 *  - Variable-length strings cannot be written in parallel HDF5 1.10, so strings are fixed-size:
 *    id 16 bytes, error 511, config 16383 (longer text is cut, said in the docs).
 *  - Collective functions never return between HDF5 calls: `ok` is carried along and all ranks
 *    agree on it at the end (agree()); only the first error message is kept.
 *  - The default HDF5 file format (no libver bounds, no SWMR): no status flags that would need
 *    h5clear after a crash, and h5py/h5dump of any version read it.
 */
#include "lorasweep/results.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#include "lorasweep/common.h"
#include "lorasweep/data.h"
#include "lorasweep/fault.h"
#include "lorasweep/grid.h"

/* What a dimension after the first (the trial row) follows. */
enum { D_NONE, D_STEPS, D_EVALS, D_SYSTEMS, D_HORIZON, D_VARS };
enum { K_I8, K_I32, K_F32, K_F64, K_STR };

typedef struct {
    const char *name;
    int kind;
    size_t strlen_; /* K_STR: bytes, NUL included */
    int ndims;
    int dims[4];    /* D_* per dimension after the first */
    double fill;    /* numbers */
    const char *doc;
} ds_def;

enum {
    DS_ID, DS_STAGE, DS_STATUS, DS_LR, DS_RANK, DS_CTX, DS_BATCH, DS_MAX_STEPS, DS_STEPS, DS_FTL, DS_FVL,
    DS_MSE_PREY, DS_MSE_PRED, DS_MSE_BOTH, DS_MAE_PREY, DS_MAE_PRED, DS_MAE_BOTH, DS_FLOPS_TRAIN, DS_FLOPS_VAL,
    DS_FLOPS_FC, DS_FLOPS_TOTAL, DS_WALL, DS_TPS, DS_ERROR, DS_CONFIG, DS_TRAIN_LOSS, DS_VAL_STEP, DS_VAL_LOSS,
    DS_FC_SYSTEM, DS_FC_MEAN, DS_FC_STD, DS_FC_TRUTH, DS_COUNT
};

static const ds_def datasets[DS_COUNT] = {
    [DS_ID] = {"/trials/id", K_STR, LS_RESULTS_ID_LEN, 1, {0}, 0, "trial id: 16 hex digits of the config hash"},
    [DS_STAGE] = {"/trials/stage", K_I32, 0, 1, {0}, -1, "sweep stage the trial belongs to (0-based)"},
    [DS_STATUS] = {"/trials/status", K_I8, 0, 1, {0}, 0,
                   "0 pending, 1 running, 2 done, 3 failed, 4 skipped (the journal is authoritative)"},
    [DS_LR] = {"/trials/lr", K_F64, 0, 1, {0}, NAN, "train.lr"},
    [DS_RANK] = {"/trials/rank", K_I32, 0, 1, {0}, -1, "lora.rank"},
    [DS_CTX] = {"/trials/ctx", K_I32, 0, 1, {0}, -1, "train.ctx (tokens per window)"},
    [DS_BATCH] = {"/trials/batch_size", K_I32, 0, 1, {0}, -1, "train.batch_size"},
    [DS_MAX_STEPS] = {"/trials/max_steps", K_I32, 0, 1, {0}, -1, "train.max_steps"},
    [DS_STEPS] = {"/trials/steps", K_I32, 0, 1, {0}, -1, "optimiser steps done"},
    [DS_FTL] = {"/trials/final_train_loss", K_F64, 0, 1, {0}, NAN, "mean train loss of the last 10 steps"},
    [DS_FVL] = {"/trials/final_val_loss", K_F64, 0, 1, {0}, NAN, "validation loss at the end"},
    [DS_MSE_PREY] = {"/trials/mse_prey", K_F64, 0, 1, {0}, NAN, "forecast MSE, prey, mean over systems"},
    [DS_MSE_PRED] = {"/trials/mse_predator", K_F64, 0, 1, {0}, NAN, "forecast MSE, predator"},
    [DS_MSE_BOTH] = {"/trials/mse_both", K_F64, 0, 1, {0}, NAN, "forecast MSE, both variables"},
    [DS_MAE_PREY] = {"/trials/mae_prey", K_F64, 0, 1, {0}, NAN, "forecast MAE, prey"},
    [DS_MAE_PRED] = {"/trials/mae_predator", K_F64, 0, 1, {0}, NAN, "forecast MAE, predator"},
    [DS_MAE_BOTH] = {"/trials/mae_both", K_F64, 0, 1, {0}, NAN, "forecast MAE, both variables"},
    [DS_FLOPS_TRAIN] = {"/trials/flops_train", K_F64, 0, 1, {0}, NAN, "FLOPS of training"},
    [DS_FLOPS_VAL] = {"/trials/flops_validation", K_F64, 0, 1, {0}, NAN, "FLOPS of validation"},
    [DS_FLOPS_FC] = {"/trials/flops_forecast", K_F64, 0, 1, {0}, NAN, "FLOPS of the forecast"},
    [DS_FLOPS_TOTAL] = {"/trials/flops_total", K_F64, 0, 1, {0}, NAN, "FLOPS in all"},
    [DS_WALL] = {"/trials/wall_seconds", K_F64, 0, 1, {0}, NAN, "wall time of the trial"},
    [DS_TPS] = {"/trials/tokens_per_s", K_F64, 0, 1, {0}, NAN, "training tokens per second"},
    [DS_ERROR] = {"/trials/error", K_STR, LS_RESULTS_ERROR_LEN, 1, {0}, 0, "error of a failed trial, reason of a skipped one"},
    [DS_CONFIG] = {"/trials/config", K_STR, LS_RESULTS_CONFIG_LEN, 1, {0}, 0, "resolved trial config (YAML)"},
    [DS_TRAIN_LOSS] = {"/curves/train_loss", K_F32, 0, 2, {D_STEPS}, NAN, "(trials, steps): loss of step j+1"},
    [DS_VAL_STEP] = {"/curves/val_step", K_I32, 0, 2, {D_EVALS}, -1, "(trials, evals): step of each validation"},
    [DS_VAL_LOSS] = {"/curves/val_loss", K_F32, 0, 2, {D_EVALS}, NAN, "(trials, evals): validation loss"},
    [DS_FC_SYSTEM] = {"/forecast/system", K_I32, 0, 2, {D_SYSTEMS}, -1, "(trials, systems): data set index"},
    [DS_FC_MEAN] = {"/forecast/mean", K_F32, 0, 4, {D_SYSTEMS, D_HORIZON, D_VARS}, NAN,
                    "(trials, systems, steps, 2): per-step mean of the samples (prey, predator)"},
    [DS_FC_STD] = {"/forecast/std", K_F32, 0, 4, {D_SYSTEMS, D_HORIZON, D_VARS}, NAN,
                   "(trials, systems, steps, 2): per-step standard deviation of the samples"},
    [DS_FC_TRUTH] = {"/forecast/truth", K_F32, 0, 4, {D_SYSTEMS, D_HORIZON, D_VARS}, NAN,
                     "(trials, systems, steps, 2): true values"},
};
static const char *const groups[] = {"/trials", "/curves", "/forecast"};

struct ls_results {
    MPI_Comm comm;
    int rank, size, readonly;
    hid_t file, dxpl;
    hid_t ds[DS_COUNT];
    char path[4096];
    int n_trials, cap;
    uint64_t *ids;
    hsize_t width[D_VARS + 1]; /* current size of each D_* dimension */
    char set_aside[4200];      /* rank 0, after a rebuild: where the damaged file went */
};

/* ---------------------------------------------------------------- helpers */

static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Keep the first error: err() records only while *ok is still set. */
#define FAIL(okp, ...) \
    do { \
        if (*(okp)) ls_error(__VA_ARGS__); \
        *(okp) = 0; \
    } while (0)

/* Every rank gets the logical AND of ok; a rank that did not fail itself says where it failed. */
static int agree(MPI_Comm comm, int ok, const char *path) {
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
    if (!all && ok) ls_error("%s: another rank failed (see its message)", path);
    return all ? LS_OK : LS_ERR;
}

static hid_t mem_type(int kind) {
    switch (kind) {
    case K_I8: return H5T_NATIVE_SCHAR;
    case K_I32: return H5T_NATIVE_INT;
    case K_F32: return H5T_NATIVE_FLOAT;
    default: return H5T_NATIVE_DOUBLE;
    }
}

static hid_t str_type(size_t n) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, n) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0)) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

static void dims_of(const ls_results *r, const ds_def *d, hsize_t rows, hsize_t *dims) {
    dims[0] = rows;
    for (int k = 1; k < d->ndims; k++) dims[k] = d->dims[k - 1] == D_VARS ? 2 : r->width[d->dims[k - 1]];
}

static void hex_id(uint64_t id, char *buf) { snprintf(buf, LS_RESULTS_ID_LEN, "%016" PRIx64, id); }

/* A scalar string attribute. Collective. */
static void put_attr_str(hid_t obj, const char *name, const char *value, int *ok, const char *path) {
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0) FAIL(ok, "%s: cannot replace the attribute %s", path, name);
    hid_t t = str_type(strlen(value) + 1), s = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    if (t < 0 || s < 0 || (a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT)) < 0 || H5Awrite(a, t, value) < 0)
        FAIL(ok, "%s: cannot write the attribute %s", path, name);
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
}

static void put_attr_int(hid_t obj, const char *name, long long value, int *ok, const char *path) {
    hid_t s = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    if (s < 0 || (a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, H5T_NATIVE_LLONG, &value) < 0)
        FAIL(ok, "%s: cannot write the attribute %s", path, name);
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
}

/* A string attribute of obj into buf (cut to cap); LS_ERR if absent or not a string. */
static int get_attr_str(hid_t obj, const char *name, char *buf, size_t cap) {
    buf[0] = '\0';
    if (H5Aexists(obj, name) <= 0) return LS_ERR;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID, m = H5I_INVALID_HID;
    int rc = LS_ERR;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0) {
        size_t n = H5Tget_size(t);
        char *tmp = ls_calloc(n + 1, 1);
        if ((m = str_type(n + 1)) >= 0 && H5Aread(a, m, tmp) >= 0) {
            snprintf(buf, cap, "%s", tmp);
            rc = LS_OK;
        }
        free(tmp);
    }
    if (m >= 0) H5Tclose(m);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return rc;
}

/* ---------------------------------------------------------------- helpers used by callers */

int ls_results_file_checksum(const char *path, uint64_t *out) { return ls_data_file_checksum(path, out); }

void ls_results_spec_from_config(const ls_trial_config *cfg, int stage, ls_results_trial_spec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->id = ls_config_hash(cfg);
    spec->stage = stage;
    spec->config_yaml = ls_config_to_yaml(cfg);
    spec->lr = cfg->train.lr;
    spec->lora_rank = cfg->lora.rank;
    spec->ctx = cfg->train.ctx;
    spec->batch_size = cfg->train.batch_size;
    spec->max_steps = cfg->train.max_steps;
    int every = cfg->train.eval_every > 0 ? cfg->train.eval_every : cfg->train.max_steps + 1;
    spec->max_evals = cfg->train.max_steps / (every > 0 ? every : 1) + 2;
    spec->forecast_systems = cfg->eval.systems;
    spec->forecast_steps = cfg->eval.forecast_steps;
}

void ls_results_metrics_from_trial(const ls_trial_result *r, ls_result_metrics *m) {
    ls_result_metrics_init(m);
    m->steps = r->train.step;
    m->final_train_loss = r->final_train_loss;
    m->final_val_loss = r->final_val_loss;
    if (r->has_forecast)
        for (int i = 0; i < LS_METRIC_COUNT; i++) {
            m->mse[i] = r->forecast.mse_mean[i];
            m->mae[i] = r->forecast.mae_mean[i];
        }
    m->flops_train = r->flops_train;
    m->flops_validation = r->flops_validation;
    m->flops_forecast = r->flops_forecast;
    m->flops_total = r->flops_total;
    m->wall_seconds = r->wall_seconds;
    m->tokens_per_s = r->train.train_seconds > 0 ? r->train.train_tokens / r->train.train_seconds : NAN;
}

/* ---------------------------------------------------------------- create, open */

static hid_t make_fapl(MPI_Comm comm) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

/* Create every dataset of the table, empty (0 rows, widths 0). Collective. */
static void create_datasets(ls_results *r, int *ok) {
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        hid_t gid = H5Gcreate2(r->file, groups[g], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (gid < 0) FAIL(ok, "%s: cannot create the group %s", r->path, groups[g]);
        else H5Gclose(gid);
    }
    for (int i = 0; i < DS_COUNT; i++) {
        const ds_def *d = &datasets[i];
        hsize_t dims[4] = {0}, maxd[4], chunk[4];
        for (int k = 0; k < d->ndims; k++) maxd[k] = H5S_UNLIMITED;
        dims_of(r, d, 0, dims);
        /* Chunks of about 4-64 KiB: 64 rows of a column, one row of a curve, 16 systems of a
         * forecast; big strings 4 rows. */
        chunk[0] = d->ndims == 1 ? (d->kind == K_STR && d->strlen_ > 1024 ? 4 : 64) : 1;
        if (d->ndims == 2) chunk[1] = d->dims[0] == D_STEPS ? 1024 : 64;
        if (d->ndims == 4) {
            chunk[1] = 16;
            chunk[2] = 64;
            chunk[3] = 2;
        }
        hid_t type = d->kind == K_STR ? str_type(d->strlen_) : H5I_INVALID_HID;
        hid_t ftype = d->kind == K_STR ? type
                      : d->kind == K_I8 ? H5T_STD_I8LE
                      : d->kind == K_I32 ? H5T_STD_I32LE
                      : d->kind == K_F32 ? H5T_IEEE_F32LE
                                          : H5T_IEEE_F64LE;
        hid_t space = H5Screate_simple(d->ndims, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        int good = space >= 0 && dcpl >= 0 && ftype >= 0 && H5Pset_chunk(dcpl, d->ndims, chunk) >= 0 &&
                   H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0 && H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC) >= 0 &&
                   H5Pset_obj_track_times(dcpl, 0) >= 0;
        if (good && d->kind != K_STR) {
            signed char c = (signed char)d->fill;
            int iv = (int)d->fill;
            float f = (float)d->fill;
            double v = d->fill;
            const void *p = d->kind == K_I8 ? (const void *)&c : d->kind == K_I32 ? (const void *)&iv
                            : d->kind == K_F32 ? (const void *)&f : (const void *)&v;
            good = H5Pset_fill_value(dcpl, mem_type(d->kind), p) >= 0;
        }
        r->ds[i] = good ? H5Dcreate2(r->file, d->name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT) : H5I_INVALID_HID;
        if (r->ds[i] < 0) FAIL(ok, "%s: cannot create the dataset %s", r->path, d->name);
        else put_attr_str(r->ds[i], "doc", d->doc, ok, r->path);
        if (dcpl >= 0) H5Pclose(dcpl);
        if (space >= 0) H5Sclose(space);
        if (type >= 0) H5Tclose(type);
    }
}

/* /grid: the grid file's text (replaced when a sweep grows its grid). Collective. */
static void write_grid_text(ls_results *r, const char *text, int *ok) {
    if (H5Lexists(r->file, "/grid", H5P_DEFAULT) > 0 && H5Ldelete(r->file, "/grid", H5P_DEFAULT) < 0)
        FAIL(ok, "%s: cannot replace /grid", r->path);
    hid_t type = str_type(strlen(text) + 1), space = H5Screate(H5S_SCALAR), d = H5I_INVALID_HID;
    if (type < 0 || space < 0 || (d = H5Dcreate2(r->file, "/grid", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        FAIL(ok, "%s: cannot create /grid", r->path);
    /* Raw data: one rank writes, the others select nothing and still take part. */
    if (d >= 0) {
        hid_t fs = H5Dget_space(d);
        if (fs >= 0 && r->rank != 0) H5Sselect_none(fs);
        hid_t ms = H5Scopy(fs);
        if (fs < 0 || ms < 0 || H5Dwrite(d, type, ms, fs, r->dxpl, text) < 0) FAIL(ok, "%s: cannot write /grid", r->path);
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
        put_attr_str(d, "doc", "the grid file's text", ok, r->path);
        H5Dclose(d);
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
}

/* Root attributes and /grid. Collective. */
static void write_meta(ls_results *r, const ls_results_meta *m, int *ok) {
    char buf[128];
    long long created = m->created > 0 ? m->created : (long long)time(NULL); /* rank 0's counts */
    MPI_Bcast(&created, 1, MPI_LONG_LONG, 0, r->comm);
    put_attr_int(r->file, "format_version", LS_RESULTS_FORMAT, ok, r->path);
    put_attr_str(r->file, "sweep_name", m->sweep_name ? m->sweep_name : "", ok, r->path);
    snprintf(buf, sizeof buf, "%016" PRIx64, m->grid_hash);
    put_attr_str(r->file, "grid_hash", buf, ok, r->path);
    put_attr_str(r->file, "program_version", LS_VERSION, ok, r->path);
    put_attr_str(r->file, "data_path", m->data_path ? m->data_path : "", ok, r->path);
    snprintf(buf, sizeof buf, "fnv1a64:%016" PRIx64, m->data_checksum);
    put_attr_str(r->file, "data_checksum", buf, ok, r->path);
    time_t t = (time_t)created;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    put_attr_str(r->file, "created", buf, ok, r->path);

    write_grid_text(r, m->grid_text ? m->grid_text : "", ok);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Open every dataset, read widths, /trials/id, and check the grid hash. Returns 0 ok,
 * 1 wrong grid, 2 damaged / not ours (message set). All ranks make the same HDF5 calls. */
static int check_existing(ls_results *r, uint64_t want_hash) {
    char buf[256], fmt[64];
    int code = 0;
    hid_t a = H5Aexists(r->file, "format_version") > 0 ? H5Aopen(r->file, "format_version", H5P_DEFAULT) : -1;
    long long version = -1;
    if (a < 0 || H5Aread(a, H5T_NATIVE_LLONG, &version) < 0) version = -1;
    if (a >= 0) H5Aclose(a);
    snprintf(fmt, sizeof fmt, "%lld", version);
    if (version != LS_RESULTS_FORMAT) {
        ls_error("%s: not a lorasweep results file (format_version %s, expected %d)", r->path,
                 version < 0 ? "missing" : fmt, LS_RESULTS_FORMAT);
        return 2;
    }
    if (get_attr_str(r->file, "grid_hash", buf, sizeof buf) != LS_OK) {
        ls_error("%s: damaged results file: no grid_hash attribute", r->path);
        return 2;
    }
    char want[32];
    snprintf(want, sizeof want, "%016" PRIx64, want_hash);
    if (want_hash != 0 && strcmp(buf, want) != 0) {
        ls_error("%s: these results belong to another grid (grid hash %s, this grid %s); refusing to mix them: use "
                 "another results file",
                 r->path, buf, want);
        code = 1;
    }
    hsize_t rows = 0;
    int ok = 1;
    for (int i = 0; i < DS_COUNT; i++) {
        const ds_def *d = &datasets[i];
        r->ds[i] = H5Dopen2(r->file, d->name, H5P_DEFAULT);
        hid_t s = r->ds[i] >= 0 ? H5Dget_space(r->ds[i]) : H5I_INVALID_HID;
        hsize_t dims[4] = {0};
        if (s < 0 || H5Sget_simple_extent_ndims(s) != d->ndims || H5Sget_simple_extent_dims(s, dims, NULL) < 0) {
            FAIL(&ok, "%s: damaged results file: %s is missing or has the wrong shape", r->path, d->name);
        } else {
            if (i == 0) rows = dims[0];
            if (dims[0] != rows) FAIL(&ok, "%s: damaged results file: %s has %llu rows, /trials/id %llu", r->path,
                                      d->name, (unsigned long long)dims[0], (unsigned long long)rows);
            for (int k = 1; k < d->ndims; k++)
                if (d->dims[k - 1] != D_VARS) r->width[d->dims[k - 1]] = dims[k];
        }
        if (s >= 0) H5Sclose(s);
    }
    if (ok && rows > (hsize_t)1 << 24) FAIL(&ok, "%s: damaged results file: %llu trials", r->path, (unsigned long long)rows);
    /* Readers allocate rows of these widths: a damaged or hostile file must not make them ask
     * for terabytes (the limits are far beyond any sweep: 16M steps, 1M validations, 1M systems,
     * 64K forecast steps). */
    static const struct {
        int dim;
        hsize_t max;
        const char *what;
    } limits[] = {{D_STEPS, (hsize_t)1 << 24, "steps"}, {D_EVALS, (hsize_t)1 << 20, "validations"},
                  {D_SYSTEMS, (hsize_t)1 << 20, "forecast systems"}, {D_HORIZON, (hsize_t)1 << 16, "forecast steps"}};
    for (size_t k = 0; ok && k < sizeof limits / sizeof *limits; k++)
        if (r->width[limits[k].dim] > limits[k].max)
            FAIL(&ok, "%s: damaged results file: %llu %s per trial", r->path,
                 (unsigned long long)r->width[limits[k].dim], limits[k].what);
    if (ok && r->width[D_SYSTEMS] * r->width[D_HORIZON] > (hsize_t)1 << 26)
        FAIL(&ok, "%s: damaged results file: %llu x %llu forecast values per trial", r->path,
             (unsigned long long)r->width[D_SYSTEMS], (unsigned long long)r->width[D_HORIZON]);
    if (ok && rows > 0) {
        char *ids = ls_malloc((size_t)rows * LS_RESULTS_ID_LEN);
        hid_t t = str_type(LS_RESULTS_ID_LEN);
        if (t < 0 || H5Dread(r->ds[DS_ID], t, H5S_ALL, H5S_ALL, r->dxpl, ids) < 0)
            FAIL(&ok, "%s: damaged results file: cannot read /trials/id", r->path);
        if (t >= 0) H5Tclose(t);
        r->cap = r->n_trials = (int)rows;
        r->ids = ls_calloc(rows, sizeof *r->ids);
        for (hsize_t i = 0; ok && i < rows; i++) {
            char *s = ids + i * LS_RESULTS_ID_LEN, *end = NULL;
            s[LS_RESULTS_ID_LEN - 1] = '\0';
            r->ids[i] = strtoull(s, &end, 16);
            if (strlen(s) != 16 || *end) FAIL(&ok, "%s: damaged results file: /trials/id[%llu] is '%.16s'", r->path,
                                              (unsigned long long)i, s);
        }
        free(ids);
        if (ok && rows > 1) { /* one row per trial: a repeated id would have its rows silently merged */
            uint64_t *sorted = ls_malloc((size_t)rows * sizeof *sorted);
            memcpy(sorted, r->ids, (size_t)rows * sizeof *sorted);
            qsort(sorted, (size_t)rows, sizeof *sorted, cmp_u64);
            for (hsize_t i = 1; ok && i < rows; i++)
                if (sorted[i] == sorted[i - 1])
                    FAIL(&ok, "%s: damaged results file: trial %016" PRIx64 " has more than one row in /trials/id",
                         r->path, sorted[i]);
            free(sorted);
        }
    }
    if (!ok) return 2;
    return code;
}

static void close_handles(ls_results *r, int *ok) {
    for (int i = 0; i < DS_COUNT; i++)
        if (r->ds[i] >= 0) {
            if (H5Dclose(r->ds[i]) < 0) FAIL(ok, "%s: cannot close %s", r->path, datasets[i].name);
            r->ds[i] = H5I_INVALID_HID;
        }
    if (r->file >= 0) {
        if (H5Fclose(r->file) < 0) FAIL(ok, "%s: cannot close the file (disk full?)", r->path);
        r->file = H5I_INVALID_HID;
    }
}

static void free_struct(ls_results *r) {
    if (r->dxpl >= 0) H5Pclose(r->dxpl);
    free(r->ids);
    free(r);
}

int ls_results_open(MPI_Comm comm, const char *path, const ls_results_meta *meta, int flags, ls_results **out,
                    ls_results_how *how) {
    quiet_hdf5();
    *out = NULL;
    ls_results *r = ls_calloc(1, sizeof *r);
    r->comm = comm;
    MPI_Comm_rank(comm, &r->rank);
    MPI_Comm_size(comm, &r->size);
    r->file = H5I_INVALID_HID;
    r->readonly = (flags & LS_RESULTS_READONLY) != 0;
    for (int i = 0; i < DS_COUNT; i++) r->ds[i] = H5I_INVALID_HID;
    snprintf(r->path, sizeof r->path, "%s", path);
    r->dxpl = H5Pcreate(H5P_DATASET_XFER);
    int ok = r->dxpl >= 0 && H5Pset_dxpl_mpio(r->dxpl, H5FD_MPIO_INDEPENDENT) >= 0;
    if (!ok) ls_error("%s: cannot set up parallel HDF5 (transfer property list)", path);
    hid_t fapl = make_fapl(comm);
    if (fapl < 0) FAIL(&ok, "%s: cannot set up parallel HDF5 (MPI-IO driver)", path);

    /* All ranks go on to the collective open only together. */
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (!all_ok && ok) FAIL(&ok, "%s: another rank could not set up parallel HDF5", path);
    /* Rank 0 decides whether the file exists, so that every rank takes the same path. */
    int exists = r->rank == 0 ? access(path, F_OK) == 0 : 0;
    MPI_Bcast(&exists, 1, MPI_INT, 0, comm);
    int code = 0; /* 0 ok, 1 wrong grid, 2 damaged */
    ls_results_how result = LS_RESULTS_OPENED;
    if (exists && ok) {
        r->file = H5Fopen(path, r->readonly ? H5F_ACC_RDONLY : H5F_ACC_RDWR, fapl);
        if (r->file < 0) {
            code = 2;
            ls_error("%s: cannot open as HDF5 (truncated, damaged or not an HDF5 file)", path);
        } else {
            code = check_existing(r, meta ? meta->grid_hash : 0);
        }
        int all = 0;
        MPI_Allreduce(&code, &all, 1, MPI_INT, MPI_MAX, comm);
        if (all != code && code == 0) ls_error("%s: another rank could not read the results file", path);
        code = all;
        if (code != 0) {
            int ignore = 1;
            close_handles(r, &ignore);
            free(r->ids);
            r->ids = NULL;
            r->n_trials = r->cap = 0;
            memset(r->width, 0, sizeof r->width);
        }
        if (code == 1) ok = 0;
        if (code == 2) {
            if ((flags & LS_RESULTS_REBUILD) && !r->readonly) {
                char aside[4200];
                int moved = 1;
                if (r->rank == 0) { /* a name not taken yet (two rebuilds in one second), kept by link */
                    moved = 0;
                    for (int k = 0; k < 1000 && !moved; k++) {
                        if (k == 0) snprintf(aside, sizeof aside, "%s.damaged-%lld", path, (long long)time(NULL));
                        else snprintf(aside, sizeof aside, "%s.damaged-%lld-%d", path, (long long)time(NULL), k);
                        if (link(path, aside) == 0) moved = unlink(path) == 0;
                        else if (errno == EPERM || errno == ENOTSUP) /* no hard links here */
                            moved = access(aside, F_OK) != 0 && rename(path, aside) == 0;
                        else if (errno != EEXIST) break;
                    }
                    if (moved) snprintf(r->set_aside, sizeof r->set_aside, "%s", aside);
                }
                MPI_Bcast(&moved, 1, MPI_INT, 0, comm);
                if (!moved) FAIL(&ok, "%s: damaged, and cannot be moved aside to rebuild it: %s", path, strerror(errno));
                exists = 0;
                result = LS_RESULTS_REBUILT;
            } else {
                ok = 0;
            }
        }
    }
    if (!exists && ok && r->readonly) FAIL(&ok, "%s: no such results file", path);
    if (!exists && ok) {
        r->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (r->file < 0) FAIL(&ok, "%s: cannot create the results file (directory missing or not writable?)", path);
        if (r->file >= 0) {
            ls_results_meta empty = {0};
            write_meta(r, meta ? meta : &empty, &ok);
            create_datasets(r, &ok);
            if (H5Fflush(r->file, H5F_SCOPE_GLOBAL) < 0) FAIL(&ok, "%s: cannot flush (disk full?)", path);
        }
        if (result != LS_RESULTS_REBUILT) result = LS_RESULTS_CREATED;
    }
    if (fapl >= 0) H5Pclose(fapl);
    if (agree(comm, ok, path) != LS_OK) {
        int ignore = 1;
        close_handles(r, &ignore);
        free_struct(r);
        return LS_ERR;
    }
    if (how) *how = result;
    *out = r;
    return LS_OK;
}

/* ---------------------------------------------------------------- adding trials */

/* A write to the results file failed: that is never a trial's fault but the machine's. The cause,
 * as well as the system tells it: errno when it names a machine fault, else a file system with no
 * room left (statvfs: HDF5 and MPI-IO do not always pass errno on), else an I/O error. */
static int write_failed(ls_results *r, const char *fmt, ...) LS_PRINTF(2, 3);
static int write_failed(ls_results *r, const char *fmt, ...) {
    int e = errno;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!ls_errno_is_machine(e)) {
        struct statvfs vfs;
        e = statvfs(r->path, &vfs) == 0 && (double)vfs.f_bavail * (double)vfs.f_frsize < 1048576.0 ? ENOSPC : EIO;
    }
    return ls_error_io(e, "%s: %s", r->path, what);
}

/* Read or write the (start, count) block of dataset i between the file and dense memory. */
static int transfer_cells(ls_results *r, int i, int row, const hsize_t *start, const hsize_t *count, void *mem,
                          int write) {
    const ds_def *d = &datasets[i];
    for (int k = 0; k < d->ndims; k++)
        if (count[k] == 0) return LS_OK;
    hid_t fs = H5Dget_space(r->ds[i]), ms = H5Screate_simple(d->ndims, count, NULL);
    hid_t mt = d->kind == K_STR ? str_type(d->strlen_) : mem_type(d->kind);
    int rc = LS_OK;
    errno = 0;
    if (write && ls_fault("results_write") != 0) /* tests: this write meets a full disk */
        rc = write_failed(r, "cannot write %s row %d", d->name, row);
    else if (fs < 0 || ms < 0 || mt < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
             (write ? H5Dwrite(r->ds[i], mt, ms, fs, r->dxpl, mem) : H5Dread(r->ds[i], mt, ms, fs, r->dxpl, mem)) < 0)
        rc = write ? write_failed(r, "cannot write %s row %d", d->name, row)
                   : ls_error("%s: cannot read %s row %d (damaged file?)", r->path, d->name, row);
    if (d->kind == K_STR && mt >= 0) H5Tclose(mt);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc;
}

/* Write n cells of dataset i at row (start/count for the other dims); mem holds them densely. */
static int write_cells(ls_results *r, int i, int row, const hsize_t *start_rest, const hsize_t *count_rest,
                       const void *mem) {
    const ds_def *d = &datasets[i];
    hsize_t start[4] = {(hsize_t)row}, count[4] = {1}, dims[4];
    for (int k = 1; k < d->ndims; k++) {
        start[k] = start_rest ? start_rest[k - 1] : 0;
        count[k] = count_rest[k - 1];
    }
    dims_of(r, d, (hsize_t)r->n_trials, dims);
    for (int k = 0; k < d->ndims; k++)
        if (start[k] + count[k] > dims[k])
            return ls_error("%s: %s has no room for these values (dimension %d: %llu + %llu > %llu)", r->path, d->name,
                            k, (unsigned long long)start[k], (unsigned long long)count[k], (unsigned long long)dims[k]);
    return transfer_cells(r, i, row, start, count, (void *)mem, 1);
}

static int read_cells(ls_results *r, int i, int row, const hsize_t *count_rest, void *mem) {
    const ds_def *d = &datasets[i];
    hsize_t start[4] = {(hsize_t)row}, count[4] = {1};
    for (int k = 1; k < d->ndims; k++) count[k] = count_rest[k - 1];
    return transfer_cells(r, i, row, start, count, mem, 0);
}

static int write_scalar(ls_results *r, int i, int row, const void *v) { return write_cells(r, i, row, NULL, NULL, v); }

static int write_string(ls_results *r, int i, int row, const char *s) {
    size_t n = datasets[i].strlen_;
    char *buf = ls_calloc(n, 1);
    if (s) {
        size_t len = strlen(s);
        memcpy(buf, s, len < n - 1 ? len : n - 1);
    }
    int rc = write_scalar(r, i, row, buf);
    free(buf);
    return rc;
}

int ls_results_row(const ls_results *r, uint64_t id) {
    for (int i = 0; i < r->n_trials; i++)
        if (r->ids[i] == id) return i;
    return -1;
}
int ls_results_n_trials(const ls_results *r) { return r->n_trials; }
uint64_t ls_results_id(const ls_results *r, int row) { return row >= 0 && row < r->n_trials ? r->ids[row] : 0; }

int ls_results_add_trials(ls_results *r, const ls_results_trial_spec *specs, int n) {
    int ok = !r->readonly;
    if (!ok) ls_error("%s: opened read-only", r->path);
    int first_new = r->n_trials;
    /* New rows and widths: the same on every rank (same file state, same list). */
    hsize_t width[D_VARS + 1];
    memcpy(width, r->width, sizeof width);
    int *is_new = ls_calloc((size_t)(n > 0 ? n : 1), sizeof *is_new);
    int n_new = 0;
    for (int k = 0; k < n; k++) {
        const ls_results_trial_spec *s = &specs[k];
        int dup = ls_results_row(r, s->id) >= 0;
        for (int q = 0; q < k && !dup; q++) dup = is_new[q] && specs[q].id == s->id;
        if (dup) continue;
        is_new[k] = 1;
        n_new++;
        if (s->max_steps > 0 && (hsize_t)s->max_steps > width[D_STEPS]) width[D_STEPS] = (hsize_t)s->max_steps;
        if (s->max_evals > 0 && (hsize_t)s->max_evals > width[D_EVALS]) width[D_EVALS] = (hsize_t)s->max_evals;
        if (s->forecast_systems > 0 && (hsize_t)s->forecast_systems > width[D_SYSTEMS])
            width[D_SYSTEMS] = (hsize_t)s->forecast_systems;
        if (s->forecast_steps > 0 && (hsize_t)s->forecast_steps > width[D_HORIZON])
            width[D_HORIZON] = (hsize_t)s->forecast_steps;
    }
    int grows = n_new > 0 || memcmp(width, r->width, sizeof width) != 0;
    if (ok && grows) {
        memcpy(r->width, width, sizeof width);
        if (r->n_trials + n_new > r->cap) {
            r->cap = r->n_trials + n_new;
            r->ids = ls_realloc(r->ids, (size_t)r->cap * sizeof *r->ids);
        }
        for (int k = 0; k < n; k++)
            if (is_new[k]) r->ids[r->n_trials++] = specs[k].id;
        for (int i = 0; i < DS_COUNT; i++) { /* collective: every rank, every dataset */
            hsize_t dims[4];
            dims_of(r, &datasets[i], (hsize_t)r->n_trials, dims);
            if (H5Dset_extent(r->ds[i], dims) < 0) FAIL(&ok, "%s: cannot extend %s (disk full?)", r->path, datasets[i].name);
        }
        /* The fills of the extension are collective writes: let them all land before any rank
         * writes a row of its own. */
        MPI_Barrier(r->comm);
        if (r->rank == 0 && ok) { /* the spec columns: one rank, independently */
            for (int k = 0, row = first_new; k < n && ok; k++) {
                if (!is_new[k]) continue;
                const ls_results_trial_spec *s = &specs[k];
                char id[LS_RESULTS_ID_LEN];
                hex_id(s->id, id);
                signed char status = LS_RESULT_PENDING;
                if (write_string(r, DS_ID, row, id) || write_scalar(r, DS_STAGE, row, &s->stage) ||
                    write_scalar(r, DS_STATUS, row, &status) || write_scalar(r, DS_LR, row, &s->lr) ||
                    write_scalar(r, DS_RANK, row, &s->lora_rank) || write_scalar(r, DS_CTX, row, &s->ctx) ||
                    write_scalar(r, DS_BATCH, row, &s->batch_size) || write_scalar(r, DS_MAX_STEPS, row, &s->max_steps) ||
                    write_string(r, DS_CONFIG, row, s->config_yaml))
                    ok = 0;
                row++;
            }
        }
    }
    free(is_new);
    /* Make the new rows durable in the file's metadata before any worker writes into them. */
    if (!r->readonly && H5Fflush(r->file, H5F_SCOPE_GLOBAL) < 0) FAIL(&ok, "%s: cannot flush (disk full?)", r->path);
    MPI_Barrier(r->comm);
    return agree(r->comm, ok, r->path);
}

int ls_results_flush(ls_results *r) {
    int ok = 1;
    if (!r->readonly && H5Fflush(r->file, H5F_SCOPE_GLOBAL) < 0) FAIL(&ok, "%s: cannot flush (disk full?)", r->path);
    return agree(r->comm, ok, r->path);
}

int ls_results_close(ls_results *r) {
    if (!r) return LS_OK;
    int ok = 1;
    MPI_Comm comm = r->comm;
    char path[4096];
    snprintf(path, sizeof path, "%s", r->path);
    close_handles(r, &ok);
    free_struct(r);
    return agree(comm, ok, path);
}

/* ---------------------------------------------------------------- independent writes */

static int row_of(ls_results *r, uint64_t id) {
    int row = ls_results_row(r, id);
    if (row < 0) ls_error("%s: trial %016" PRIx64 " has no row (ls_results_add_trials first)", r->path, id);
    return row;
}

int ls_results_write_status(ls_results *r, uint64_t id, ls_result_status status, const char *message) {
    int row = row_of(r, id);
    if (row < 0) return LS_ERR;
    signed char s = (signed char)status;
    if (write_scalar(r, DS_STATUS, row, &s) != LS_OK) return LS_ERR;
    return write_string(r, DS_ERROR, row, message ? message : "");
}

int ls_results_write_train_loss(ls_results *r, uint64_t id, int first_step, int n, const float *loss) {
    int row = row_of(r, id);
    if (row < 0) return LS_ERR;
    if (first_step < 1 || n < 0) return ls_error("%s: bad step range %d+%d", r->path, first_step, n);
    hsize_t start = (hsize_t)(first_step - 1), count = (hsize_t)n;
    return write_cells(r, DS_TRAIN_LOSS, row, &start, &count, loss);
}

int ls_results_write_evals(ls_results *r, uint64_t id, int n, const int *steps, const float *val_loss) {
    int row = row_of(r, id);
    if (row < 0) return LS_ERR;
    if (n < 0) return ls_error("%s: bad number of evaluations %d", r->path, n);
    hsize_t count = (hsize_t)n;
    if (write_cells(r, DS_VAL_STEP, row, NULL, &count, steps) != LS_OK) return LS_ERR;
    return write_cells(r, DS_VAL_LOSS, row, NULL, &count, val_loss);
}

int ls_results_write_metrics(ls_results *r, uint64_t id, const ls_result_metrics *m) {
    int row = row_of(r, id);
    if (row < 0) return LS_ERR;
    const double *cols[] = {&m->final_train_loss, &m->final_val_loss, &m->mse[0], &m->mse[1], &m->mse[2],
                            &m->mae[0], &m->mae[1], &m->mae[2], &m->flops_train, &m->flops_validation,
                            &m->flops_forecast, &m->flops_total, &m->wall_seconds, &m->tokens_per_s};
    const int ds[] = {DS_FTL, DS_FVL, DS_MSE_PREY, DS_MSE_PRED, DS_MSE_BOTH, DS_MAE_PREY, DS_MAE_PRED,
                      DS_MAE_BOTH, DS_FLOPS_TRAIN, DS_FLOPS_VAL, DS_FLOPS_FC, DS_FLOPS_TOTAL, DS_WALL, DS_TPS};
    for (size_t k = 0; k < sizeof ds / sizeof *ds; k++)
        if (write_scalar(r, ds[k], row, cols[k]) != LS_OK) return LS_ERR;
    return write_scalar(r, DS_STEPS, row, &m->steps);
}

int ls_results_write_forecast(ls_results *r, uint64_t id, const ls_forecast *f) {
    int row = row_of(r, id);
    if (row < 0) return LS_ERR;
    hsize_t count1 = (hsize_t)f->n_systems, count3[3] = {(hsize_t)f->n_systems, (hsize_t)f->steps, 2};
    if (write_cells(r, DS_FC_SYSTEM, row, NULL, &count1, f->system) != LS_OK ||
        write_cells(r, DS_FC_MEAN, row, NULL, count3, f->mean) != LS_OK ||
        write_cells(r, DS_FC_STD, row, NULL, count3, f->std) != LS_OK ||
        write_cells(r, DS_FC_TRUTH, row, NULL, count3, f->truth) != LS_OK)
        return LS_ERR;
    return LS_OK;
}

int ls_results_write_trial(ls_results *r, const ls_trial_result *tr, ls_result_status status, const char *message) {
    ls_result_metrics m;
    ls_results_metrics_from_trial(tr, &m);
    if (tr->train.step > 0 && ls_results_write_train_loss(r, tr->id, 1, tr->train.step, tr->train.train_loss) != LS_OK)
        return LS_ERR;
    if (ls_results_write_evals(r, tr->id, tr->train.n_evals, tr->train.eval_step, tr->train.val_loss) != LS_OK)
        return LS_ERR;
    if (ls_results_write_metrics(r, tr->id, &m) != LS_OK) return LS_ERR;
    if (tr->has_forecast && ls_results_write_forecast(r, tr->id, &tr->forecast) != LS_OK) return LS_ERR;
    return ls_results_write_status(r, tr->id, status, message);
}

int ls_results_fill_from_journal(ls_results *r, const ls_journal_state *st) {
    for (int i = 0; i < st->n_trials; i++) {
        const ls_journal_trial *t = &st->trials[i];
        if (ls_results_row(r, t->id) < 0) continue;
        if ((t->status == LS_RESULT_DONE || t->status == LS_RESULT_STOPPED) &&
            ls_results_write_metrics(r, t->id, &t->metrics) != LS_OK)
            return LS_ERR;
        if (ls_results_write_status(r, t->id, t->status, t->message) != LS_OK) return LS_ERR;
    }
    return LS_OK;
}

/* ---------------------------------------------------------------- rebuild from a trial's files */

/* Split a CSV line in place into at most max fields; returns the count. */
static int csv_fields(char *line, char **f, int max) {
    int n = 0;
    for (char *p = line;;) {
        if (n == max) return max + 1;
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

/* A number, or NaN for an empty field; LS_ERR if neither. */
static int csv_number(const char *s, double *out) {
    if (!*s) {
        *out = NAN;
        return LS_OK;
    }
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return *end || errno == ERANGE ? LS_ERR : LS_OK;
}

/* Read path into lines; NULL (no error) when it does not exist. */
static char *read_optional(const char *path, int *missing) {
    *missing = access(path, F_OK) != 0;
    if (*missing) return NULL;
    size_t n;
    return ls_read_file(path, &n);
}

static int fill_curves(ls_results *r, uint64_t id, const char *path) {
    int missing;
    char *text = read_optional(path, &missing);
    if (missing) return LS_OK;
    if (!text) return LS_ERR;
    int cap = (int)r->width[D_STEPS], ecap = (int)r->width[D_EVALS], last = 0, n_evals = 0, rc = LS_OK, line = 1;
    float *loss = ls_malloc((size_t)(cap > 0 ? cap : 1) * sizeof *loss);
    float *val = ls_malloc((size_t)(ecap > 0 ? ecap : 1) * sizeof *val);
    int *vstep = ls_malloc((size_t)(ecap > 0 ? ecap : 1) * sizeof *vstep);
    for (int i = 0; i < cap; i++) loss[i] = NAN;
    char *save = NULL, *l = strtok_r(text, "\n", &save);
    if (!l || strcmp(l, "step,train_loss,val_loss") != 0) rc = ls_error("%s:1: expected the header step,train_loss,val_loss", path);
    while (rc == LS_OK && (l = strtok_r(NULL, "\n", &save)) != NULL) {
        line++;
        char *f[3];
        double step, tl, vl;
        if (csv_fields(l, f, 3) != 3 || csv_number(f[0], &step) || csv_number(f[1], &tl) || csv_number(f[2], &vl) ||
            !(step >= 0 && step <= cap && step == (int)step)) {
            rc = ls_error("%s:%d: expected step,train_loss,val_loss with a step in 0..%d", path, line, cap);
            break;
        }
        int s = (int)step;
        if (s >= 1) loss[s - 1] = (float)tl;
        if (s > last) last = s;
        if (!isnan(vl)) {
            if (n_evals == ecap) {
                rc = ls_error("%s:%d: more validation points than the results file has room for (%d)", path, line, ecap);
                break;
            }
            vstep[n_evals] = s;
            val[n_evals++] = (float)vl;
        }
    }
    if (rc == LS_OK && last > 0) rc = ls_results_write_train_loss(r, id, 1, last, loss);
    if (rc == LS_OK) rc = ls_results_write_evals(r, id, n_evals, vstep, val);
    free(loss);
    free(val);
    free(vstep);
    free(text);
    return rc;
}

static int fill_forecast(ls_results *r, uint64_t id, const char *path) {
    int missing;
    char *text = read_optional(path, &missing);
    if (missing) return LS_OK;
    if (!text) return LS_ERR;
    int S = (int)r->width[D_SYSTEMS], H = (int)r->width[D_HORIZON], n_sys = 0, max_h = 0, rc = LS_OK, line = 1;
    size_t cells = (size_t)(S > 0 ? S : 1) * (size_t)(H > 0 ? H : 1) * 2;
    ls_forecast f = {0};
    f.system = ls_malloc((size_t)(S > 0 ? S : 1) * sizeof *f.system);
    f.mean = ls_malloc(cells * sizeof(float));
    f.std = ls_malloc(cells * sizeof(float));
    f.truth = ls_malloc(cells * sizeof(float));
    for (size_t i = 0; i < cells; i++) f.mean[i] = f.std[i] = f.truth[i] = NAN;
    char *save = NULL, *l = strtok_r(text, "\n", &save);
    if (!l || strcmp(l, "system,step,variable,truth,mean,median,std") != 0)
        rc = ls_error("%s:1: expected the header system,step,variable,truth,mean,median,std", path);
    while (rc == LS_OK && (l = strtok_r(NULL, "\n", &save)) != NULL) {
        line++;
        char *fl[7];
        double sys, step, truth, mean, median, sd;
        int var = -1;
        if (csv_fields(l, fl, 7) == 7) var = strcmp(fl[2], "prey") == 0 ? 0 : strcmp(fl[2], "predator") == 0 ? 1 : -1;
        if (var < 0 || csv_number(fl[0], &sys) || csv_number(fl[1], &step) || csv_number(fl[3], &truth) ||
            csv_number(fl[4], &mean) || csv_number(fl[5], &median) || csv_number(fl[6], &sd) ||
            !(sys >= 0 && sys < 1e9 && sys == (int)sys) || !(step >= 0 && step < H && step == (int)step)) {
            rc = ls_error("%s:%d: expected system,step,prey|predator,truth,mean,median,std with a step in 0..%d", path,
                          line, H - 1);
            break;
        }
        int k = n_sys - 1;
        while (k >= 0 && f.system[k] != (int)sys) k--;
        if (k < 0) {
            if (n_sys == S) {
                rc = ls_error("%s:%d: more systems than the results file has room for (%d)", path, line, S);
                break;
            }
            k = n_sys;
            f.system[n_sys++] = (int)sys;
        }
        size_t at = ((size_t)k * (size_t)H + (size_t)step) * 2 + (size_t)var;
        f.truth[at] = (float)truth;
        f.mean[at] = (float)mean;
        f.std[at] = (float)sd;
        if ((int)step + 1 > max_h) max_h = (int)step + 1;
    }
    if (rc == LS_OK && n_sys > 0) {
        /* rows were laid out with the file's horizon H: write them all (NaN beyond the trial's) */
        f.n_systems = n_sys;
        f.steps = H;
        rc = ls_results_write_forecast(r, id, &f);
    }
    (void)max_h;
    free(f.system);
    free(f.mean);
    free(f.std);
    free(f.truth);
    free(text);
    return rc;
}

int ls_results_fill_from_trial_dir(ls_results *r, uint64_t id, const char *dir) {
    if (row_of(r, id) < 0) return LS_ERR;
    char path[4200];
    snprintf(path, sizeof path, "%s/curves.csv", dir);
    if (fill_curves(r, id, path) != LS_OK) return LS_ERR;
    snprintf(path, sizeof path, "%s/forecasts.csv", dir);
    return fill_forecast(r, id, path);
}

/* ---------------------------------------------------------------- independent reads */

int ls_results_read_row(ls_results *r, uint64_t id, ls_results_row_data *out) {
    memset(out, 0, sizeof *out);
    int row = row_of(r, id);
    if (row < 0) return LS_ERR;
    ls_result_metrics *m = &out->metrics;
    double *cols[] = {&m->final_train_loss, &m->final_val_loss, &m->mse[0], &m->mse[1], &m->mse[2], &m->mae[0],
                      &m->mae[1], &m->mae[2], &m->flops_train, &m->flops_validation, &m->flops_forecast,
                      &m->flops_total, &m->wall_seconds, &m->tokens_per_s, &out->lr};
    const int ds[] = {DS_FTL, DS_FVL, DS_MSE_PREY, DS_MSE_PRED, DS_MSE_BOTH, DS_MAE_PREY, DS_MAE_PRED, DS_MAE_BOTH,
                      DS_FLOPS_TRAIN, DS_FLOPS_VAL, DS_FLOPS_FC, DS_FLOPS_TOTAL, DS_WALL, DS_TPS, DS_LR};
    for (size_t k = 0; k < sizeof ds / sizeof *ds; k++)
        if (read_cells(r, ds[k], row, NULL, cols[k]) != LS_OK) return LS_ERR;
    int *ints[] = {&m->steps, &out->stage, &out->lora_rank, &out->ctx, &out->batch_size, &out->max_steps};
    const int ids[] = {DS_STEPS, DS_STAGE, DS_RANK, DS_CTX, DS_BATCH, DS_MAX_STEPS};
    for (size_t k = 0; k < sizeof ids / sizeof *ids; k++)
        if (read_cells(r, ids[k], row, NULL, ints[k]) != LS_OK) return LS_ERR;
    signed char s = 0;
    if (read_cells(r, DS_STATUS, row, NULL, &s) != LS_OK || read_cells(r, DS_ERROR, row, NULL, out->error) != LS_OK)
        return LS_ERR;
    out->error[LS_RESULTS_ERROR_LEN - 1] = '\0';
    out->status = (ls_result_status)s;
    out->id = id;
    /* Readers size buffers by max_steps and index stages by stage: a damaged or hostile row must
     * not make them allocate gigabytes or overflow. The curves are as wide as the longest trial
     * (max_steps <= the width, by construction); -1 is a cell not written yet. */
    if (out->max_steps < -1 || out->max_steps > (int)r->width[D_STEPS] || out->stage < -1 ||
        out->stage >= LS_GRID_MAX_STAGES)
        return ls_error("%s: damaged results file: trial %016" PRIx64 " has stage %d and max_steps %d (at most %d "
                        "stages and %llu steps)", r->path, id, out->stage, out->max_steps, LS_GRID_MAX_STAGES,
                        (unsigned long long)r->width[D_STEPS]);
    return LS_OK;
}

int ls_results_read_train_loss(ls_results *r, uint64_t id, float *loss, int cap, int *n) {
    *n = 0;
    int row = row_of(r, id);
    if (row < 0) return LS_ERR;
    hsize_t count = r->width[D_STEPS] < (hsize_t)cap ? r->width[D_STEPS] : (hsize_t)cap;
    if (read_cells(r, DS_TRAIN_LOSS, row, &count, loss) != LS_OK) return LS_ERR;
    *n = (int)count;
    return LS_OK;
}

int ls_results_read_evals(ls_results *r, uint64_t id, int *steps, float *val_loss, int cap, int *n) {
    *n = 0;
    int row = row_of(r, id);
    if (row < 0) return LS_ERR;
    hsize_t count = r->width[D_EVALS] < (hsize_t)cap ? r->width[D_EVALS] : (hsize_t)cap;
    if (read_cells(r, DS_VAL_STEP, row, &count, steps) != LS_OK || read_cells(r, DS_VAL_LOSS, row, &count, val_loss) != LS_OK)
        return LS_ERR;
    *n = (int)count;
    return LS_OK;
}

int ls_results_read_forecast(ls_results *r, uint64_t id, int *S, int *H, int **system, float **mean, float **std,
                             float **truth) {
    int row = row_of(r, id);
    if (row < 0) return LS_ERR;
    hsize_t c1 = r->width[D_SYSTEMS], c3[3] = {r->width[D_SYSTEMS], r->width[D_HORIZON], 2};
    size_t n = (size_t)(c3[0] * c3[1] * 2);
    *S = (int)c3[0];
    *H = (int)c3[1];
    int rc = LS_OK;
    if (system) {
        *system = ls_malloc((c1 ? c1 : 1) * sizeof **system);
        if (read_cells(r, DS_FC_SYSTEM, row, &c1, *system) != LS_OK) rc = LS_ERR;
    }
    float **outs[3] = {mean, std, truth};
    const int ds[3] = {DS_FC_MEAN, DS_FC_STD, DS_FC_TRUTH};
    for (int k = 0; k < 3; k++)
        if (outs[k]) {
            *outs[k] = ls_malloc((n ? n : 1) * sizeof(float));
            if (rc == LS_OK && read_cells(r, ds[k], row, c3, *outs[k]) != LS_OK) rc = LS_ERR;
        }
    return rc;
}

char *ls_results_read_config(ls_results *r, uint64_t id) {
    int row = row_of(r, id);
    if (row < 0) return NULL;
    char *buf = ls_calloc(LS_RESULTS_CONFIG_LEN, 1);
    if (read_cells(r, DS_CONFIG, row, NULL, buf) != LS_OK) {
        free(buf);
        return NULL;
    }
    buf[LS_RESULTS_CONFIG_LEN - 1] = '\0';
    return buf;
}

int ls_results_read_info(ls_results *r, ls_results_info *out) {
    memset(out, 0, sizeof *out);
    /* every file this program writes has all of them; absent ones (older files) read "" */
    get_attr_str(r->file, "sweep_name", out->sweep_name, sizeof out->sweep_name);
    get_attr_str(r->file, "grid_hash", out->grid_hash, sizeof out->grid_hash);
    get_attr_str(r->file, "program_version", out->program_version, sizeof out->program_version);
    get_attr_str(r->file, "created", out->created, sizeof out->created);
    get_attr_str(r->file, "data_checksum", out->data_checksum, sizeof out->data_checksum);
    get_attr_str(r->file, "data_path", out->data_path, sizeof out->data_path);
    hid_t d = H5Lexists(r->file, "/grid", H5P_DEFAULT) > 0 ? H5Dopen2(r->file, "/grid", H5P_DEFAULT) : H5I_INVALID_HID;
    hid_t t = d >= 0 ? H5Dget_type(d) : H5I_INVALID_HID, m = H5I_INVALID_HID;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0) {
        size_t n = H5Tget_size(t);
        out->grid_text = ls_calloc(n + 1, 1);
        if ((m = str_type(n + 1)) < 0 || H5Dread(d, m, H5S_ALL, H5S_ALL, r->dxpl, out->grid_text) < 0)
            out->grid_text[0] = '\0';
    }
    if (m >= 0) H5Tclose(m);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    if (!out->grid_text) out->grid_text = ls_calloc(1, 1);
    return LS_OK;
}

void ls_results_info_free(ls_results_info *info) {
    free(info->grid_text);
    info->grid_text = NULL;
}

int ls_results_set_grid(ls_results *r, const ls_results_meta *m) {
    int ok = 1;
    char buf[32];
    snprintf(buf, sizeof buf, "%016" PRIx64, m->grid_hash);
    put_attr_str(r->file, "sweep_name", m->sweep_name ? m->sweep_name : "", &ok, r->path);
    put_attr_str(r->file, "grid_hash", buf, &ok, r->path);
    write_grid_text(r, m->grid_text ? m->grid_text : "", &ok);
    if (ok && H5Fflush(r->file, H5F_SCOPE_GLOBAL) < 0) FAIL(&ok, "%s: cannot flush (disk full?)", r->path);
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, r->comm);
    if (ok && !all) ls_error("%s: another rank could not record the grid", r->path);
    return all ? LS_OK : LS_ERR;
}

const char *ls_results_set_aside(const ls_results *r) { return r->set_aside; }

int ls_results_evals_width(const ls_results *r) { return (int)r->width[D_EVALS]; }
