/*
 * results.h: the sweep's results file, one HDF5 file opened by every rank of a communicator with
 * parallel HDF5 (MPI-IO). Schema and Python examples: docs/results.md.
 *
 * Two kinds of calls, and the rule that keeps a parallel job from deadlocking:
 *  - COLLECTIVE: every rank of the communicator calls, in the same order, with the same
 *    arguments: ls_results_open, ls_results_add_trials, ls_results_flush, ls_results_close.
 *    They create, extend and close HDF5 objects. They never return early between HDF5 calls: an
 *    error is remembered, the sequence goes on, and at the end all ranks agree (MPI_Allreduce)
 *    on the result, so every rank returns LS_ERR or every rank returns LS_OK.
 *  - INDEPENDENT: one rank calls on its own, for a trial it owns: the ls_results_write_* and
 *    ls_results_read_* functions. They only read or write raw data of datasets that already
 *    exist with room for the rows (H5FD_MPIO_INDEPENDENT); two ranks must not write the same
 *    trial's row of the same dataset.
 *
 * How the scheduler uses it (rank 0 schedules, ranks >= 1 run trials):
 *   all ranks:  ls_results_open(comm, path, &meta, LS_RESULTS_REBUILD, &res, &how)
 *   all ranks:  ls_results_add_trials(res, specs, n)   (every stage's trials, when it starts;
 *               rank 0 broadcasts the list first so all ranks pass the same one)
 *   rank 0, if how == LS_RESULTS_REBUILT: ls_results_fill_from_journal(res, journal_state) and,
 *               for each done trial, ls_results_fill_from_trial_dir(res, id, its output dir)
 *   worker r:   ls_results_write_train_loss / _evals while training,
 *               ls_results_write_trial (everything of a finished trial) or ls_results_write_status
 *   rank 0:     ls_journal_trial_done after the worker said its rows are written
 *   all ranks:  ls_results_close(res)
 * The journal (journal.h) is the truth about which trials are done; this file is the data.
 */
#ifndef LORASWEEP_RESULTS_H
#define LORASWEEP_RESULTS_H

#include <mpi.h>
#include <stdint.h>

#include "lorasweep/journal.h"
#include "lorasweep/trial.h"

#define LS_RESULTS_FORMAT 1       /* the root attribute format_version */
#define LS_RESULTS_ID_LEN 17      /* "%016llx" and NUL: /trials/id is a fixed string of 16 bytes */
#define LS_RESULTS_ERROR_LEN 512  /* bytes of /trials/error, NUL included */
#define LS_RESULTS_CONFIG_LEN 16384 /* bytes of /trials/config (the resolved YAML), NUL included */

/* The sweep as a whole: stored once, at creation, in root attributes and /grid. */
typedef struct {
    const char *sweep_name;
    const char *grid_text;       /* the grid file's text ("" if none) */
    uint64_t grid_hash;          /* identifies the grid: a file with another hash is refused */
    const char *data_path;       /* the data file as given ("" if none) */
    uint64_t data_checksum;      /* ls_results_file_checksum of the data file (0 if none) */
    long long created;           /* unix time the sweep began (a rebuilt file keeps it); 0: now */
} ls_results_meta;

/* One trial as ls_results_add_trials creates its rows. */
typedef struct {
    uint64_t id;
    int stage;                   /* 0, 1, ... */
    const char *config_yaml;     /* ls_config_to_yaml of the resolved config (cut at CONFIG_LEN-1) */
    double lr;
    int lora_rank, ctx, batch_size, max_steps;
    int max_evals;               /* room for validation points (max_steps / eval_every + 2) */
    int forecast_systems, forecast_steps; /* room for the forecast; 0 = no forecast */
} ls_results_trial_spec;

/* The spec of a config: hyperparameter columns, room for curves and forecasts. The yaml pointer
 * is stored in *spec (the caller frees it with free() after add_trials). */
void ls_results_spec_from_config(const ls_trial_config *cfg, int stage, ls_results_trial_spec *spec);
/* Summary metrics of a finished trial's result. */
void ls_results_metrics_from_trial(const ls_trial_result *r, ls_result_metrics *m);

/* 64-bit FNV-1a of a file's bytes (the data file's checksum): ls_data_file_checksum, the value a
 * trial's checkpoint and metrics.json record. LS_ERR if it cannot be read. */
int ls_results_file_checksum(const char *path, uint64_t *out);

typedef struct ls_results ls_results;

enum {
    LS_RESULTS_REBUILD = 1 << 0, /* open: an unreadable file is moved aside and recreated */
    LS_RESULTS_READONLY = 1 << 1 /* open: read only; never create */
};
typedef enum { LS_RESULTS_OPENED, LS_RESULTS_CREATED, LS_RESULTS_REBUILT } ls_results_how;

/* COLLECTIVE. Open the results file at path for the sweep in meta; create it when missing
 * (unless READONLY). An existing file whose grid hash differs from meta->grid_hash is refused
 * (LS_ERR naming both hashes); meta->grid_hash 0 accepts any (readers). An existing file that
 * is not a readable results file (truncated, garbage, a damaged header) is an LS_ERR naming it,
 * or with LS_RESULTS_REBUILD is renamed to "<path>.damaged-<unix time>[-k]" (a name not taken) by rank 0 and a fresh
 * file is created (*how = LS_RESULTS_REBUILT): the caller adds the trials again and refills the
 * summary from the journal (ls_results_fill_from_journal). */
int ls_results_open(MPI_Comm comm, const char *path, const ls_results_meta *meta, int flags, ls_results **out,
                    ls_results_how *how);

/* After an open that rebuilt the file (LS_RESULTS_REBUILT): the name the damaged file was moved
 * to, on rank 0 ("" elsewhere and otherwise). */
const char *ls_results_set_aside(const ls_results *r);

/* Record a grown grid (ls_grid_extends): its hash, name and text replace the file's. Collective. */
int ls_results_set_grid(ls_results *r, const ls_results_meta *m);

/* COLLECTIVE. Give the trials rows (the same list on every rank). Trials already in the file are
 * left as they are (their rows never change); new ones are appended in list order. 2-D and 4-D
 * datasets grow when a trial needs more steps, evaluations, systems or forecast steps. New cells
 * hold the fill values (NaN, -1, "", status pending) until written. */
int ls_results_add_trials(ls_results *r, const ls_results_trial_spec *specs, int n);

/* COLLECTIVE. H5Fflush: metadata and raw data handed to the OS. */
int ls_results_flush(ls_results *r);
/* COLLECTIVE. Close and free; LS_ERR if any rank's close failed. r may be NULL on every rank. */
int ls_results_close(ls_results *r);

/* Rows and sizes known to this rank (the same on every rank). */
int ls_results_n_trials(const ls_results *r);
/* The validation slots every trial has in /curves (the widest trial's count; checked bounded). */
int ls_results_evals_width(const ls_results *r);
/* Row of a trial, or -1. */
int ls_results_row(const ls_results *r, uint64_t id);
/* The id of row i. */
uint64_t ls_results_id(const ls_results *r, int row);

/* ---- INDEPENDENT writes: one rank, its own trial. LS_ERR for an unknown id or a row too short. */

/* /trials/status and /trials/error (message NULL or "" clears it; cut to ERROR_LEN-1). */
int ls_results_write_status(ls_results *r, uint64_t id, ls_result_status status, const char *message);
/* /curves/train_loss[row, first_step-1 .. first_step-1+n): loss of steps first_step.. (1-based). */
int ls_results_write_train_loss(ls_results *r, uint64_t id, int first_step, int n, const float *loss);
/* /curves/val_step and /curves/val_loss[row, 0..n): the validation points so far. */
int ls_results_write_evals(ls_results *r, uint64_t id, int n, const int *steps, const float *val_loss);
/* The summary columns of /trials (losses, MSE/MAE, FLOPS, wall, tokens/s, steps). */
int ls_results_write_metrics(ls_results *r, uint64_t id, const ls_result_metrics *m);
/* /forecast/system, mean, std, truth of the trial (S systems, H steps, 2 variables). */
int ls_results_write_forecast(ls_results *r, uint64_t id, const ls_forecast *f);
/* Everything of a trial's result (curves, evals, metrics, forecast when it has one) and its
 * status (done, or failed with message when status is LS_RESULT_FAILED). */
int ls_results_write_trial(ls_results *r, const ls_trial_result *tr, ls_result_status status, const char *message);
/* Rank 0 after a rebuild: status, metrics and messages of every journaled trial that has a row. */
int ls_results_fill_from_journal(ls_results *r, const ls_journal_state *st);

/* One rank, after a rebuild: the curves and forecast of a finished trial from its own output
 * directory as `lorasweep train` writes it (curves.csv: step,train_loss,val_loss; forecasts.csv:
 * system,step,variable,truth,mean,median,std). A missing file is skipped; a malformed one is an
 * LS_ERR naming file and line, with nothing of that file written. */
int ls_results_fill_from_trial_dir(ls_results *r, uint64_t id, const char *dir);

/* ---- INDEPENDENT reads (rank 0 during a sweep, or any program afterwards: a serial program
 * calls MPI_Init and opens with MPI_COMM_SELF, LS_RESULTS_READONLY and grid_hash 0). */

typedef struct {
    uint64_t id;
    int stage;
    ls_result_status status;
    double lr;
    int lora_rank, ctx, batch_size, max_steps;
    ls_result_metrics metrics;
    char error[LS_RESULTS_ERROR_LEN];
} ls_results_row_data;

int ls_results_read_row(ls_results *r, uint64_t id, ls_results_row_data *out);
/* Curves: up to cap values (the dataset's width at most); *n gets the number copied. */
int ls_results_read_train_loss(ls_results *r, uint64_t id, float *loss, int cap, int *n);
int ls_results_read_evals(ls_results *r, uint64_t id, int *steps, float *val_loss, int cap, int *n);
/* Forecast arrays of the trial, each (S, H, 2) as the file's current dims; S, H returned.
 * Any pointer may be NULL. The caller frees the arrays. */
int ls_results_read_forecast(ls_results *r, uint64_t id, int *S, int *H, int **system, float **mean, float **std,
                             float **truth);
/* The config YAML of a trial (malloc'ed), NULL with an error. */
char *ls_results_read_config(ls_results *r, uint64_t id);

/* The sweep as the file describes it: root attributes and /grid. */
typedef struct {
    char sweep_name[256], grid_hash[32], program_version[64], created[64], data_checksum[64];
    char data_path[4096];
    char *grid_text;             /* malloc'ed ("" when the file has none); free with ls_results_info_free */
} ls_results_info;
int ls_results_read_info(ls_results *r, ls_results_info *out);
void ls_results_info_free(ls_results_info *info);

#endif
