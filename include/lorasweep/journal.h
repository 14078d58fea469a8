/*
 * journal.h: the sweep's durable record of truth: an append-only journal of trial events beside
 * the results file (RESULTS.h5.journal), written by one process (rank 0, the scheduler), each
 * record fsync'ed before the append returns. HDF5 makes no crash-consistency promise
 * (notes/reliability.md); the journal does: a record that ls_journal_append acknowledged is on
 * disk, and a record torn by a crash is recognised and discarded on the next open.
 *
 * File format (docs/results.md): an 8-byte magic "LSJRNL01", then records, each
 *   u32 length of the payload (little-endian), u32 CRC-32 (zlib) of the payload, payload.
 * The payload starts with u8 record type, u8 payload version, f64 unix time of the append, u64
 * trial id (0 for sweep_start); the rest depends on the type (journal.c, encode_record).
 *
 * Replay reads records until the first one that is incomplete or fails its CRC. If nothing valid
 * follows, that is a torn tail (a crash during an append): it is reported in bytes and, when the
 * journal is opened for appending, truncated away. If a valid record follows the damage, the
 * journal was damaged in the middle (not by a crash of ours): replay refuses with an error rather
 * than throw acknowledged records away.
 *
 * Typical use by the scheduler (rank 0):
 *   ls_journal *j;
 *   if (ls_journal_open("results/demo.h5", job_id, &j) != LS_OK) die(ls_last_error());
 *   const ls_journal_state *st = ls_journal_current(j);   // replayed: what is done, running, ...
 *   ls_journal_sweep_start(j, grid_hash, job_id);
 *   ... for each trial: ls_journal_find(st, id) tells pending/done/... and the last checkpoint;
 *   ls_journal_trial_start(j, id, attempt, rank, host, device);
 *   ... worker reports, the worker's HDF5 rows are written, then:
 *   ls_journal_trial_done(j, id, &metrics);   // the trial counts as done from here on
 *   ls_journal_close(j);
 */
#ifndef LORASWEEP_JOURNAL_H
#define LORASWEEP_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lorasweep/eval.h"

#define LS_JOURNAL_MAGIC "LSJRNL01"
#define LS_JOURNAL_MAGIC_LEN 8
#define LS_JOURNAL_TEXT_MAX 1024   /* bytes kept of a message, reason, host or job id (with NUL) */
#define LS_JOURNAL_RECORD_MAX 4096 /* payload bytes; a larger length field means damage */

/* A trial's state as the journal (and /trials/status in the results file) knows it. The codes are
 * stored in the results file: never renumber. */
typedef enum {
    LS_RESULT_PENDING = 0, /* no record yet: not started */
    LS_RESULT_RUNNING = 1, /* started and not finished: after a crash, interrupted */
    LS_RESULT_DONE = 2,    /* finished; its results are durable */
    LS_RESULT_FAILED = 3,  /* stopped by an error (message kept); may be retried */
    LS_RESULT_SKIPPED = 4, /* not run on purpose (reason kept), e.g. over the FLOPS budget */
    LS_RESULT_STOPPED = 5, /* stopped early at a rung (early stopping): its step and last validation
                            * loss kept, its files too; final, like done, but never a winner */
} ls_result_status;

/* "pending", "running", ...; "unknown" for other values. */
const char *ls_result_status_name(int status);

/* The summary of a finished trial: what the journal keeps and stage selection needs. NaN for what
 * a trial did not produce (no validation split, no forecast). */
typedef struct {
    int steps;                                   /* optimiser steps done */
    double final_train_loss, final_val_loss;
    double mse[LS_METRIC_COUNT], mae[LS_METRIC_COUNT]; /* prey, predator, both */
    double flops_train, flops_validation, flops_forecast, flops_total;
    double wall_seconds, tokens_per_s;
} ls_result_metrics;

/* All NaN, steps 0. */
void ls_result_metrics_init(ls_result_metrics *m);
/* The journal wins: every value the journal's summary has (not NaN) that differs from row's, bit
 * for bit, is copied into row. Returns how many differed (0: the row agrees with the journal). */
int ls_result_metrics_take(ls_result_metrics *row, const ls_result_metrics *journal);

typedef enum {
    LS_JREC_SWEEP_START = 1,      /* grid_hash, text = job id */
    LS_JREC_TRIAL_START = 2,      /* attempt, rank, device, text = host */
    LS_JREC_TRIAL_PROGRESS = 3,   /* step, loss, val_loss (NaN unless a validation ran) */
    LS_JREC_TRIAL_CHECKPOINT = 4, /* step */
    LS_JREC_TRIAL_DONE = 5,       /* metrics */
    LS_JREC_TRIAL_FAILED = 6,     /* text = message */
    LS_JREC_TRIAL_SKIPPED = 7,    /* text = reason */
    LS_JREC_DECISION = 8,         /* early stopping: verdict (asha.h ls_es_verdict), rung, step, value,
                                   * cutoff, n_at_rung; the trial is the unit judged (a configuration's
                                   * repeat 0) or, for arrived and stopped, the trial itself */
    LS_JREC_COST = 9,             /* what one run of a trial or rung segment took (ls_segment_cost),
                                   * text = its time-model key (timemodel.h): the model of the
                                   * time limit, rebuilt by every run of the sweep */
} ls_jrec_type;

/* What one run of a trial (or of a rung segment) on a worker took: measured there, journalled by
 * rank 0, the time model's samples (timemodel.h). Durations only, never absolute times. */
typedef struct {
    int steps;              /* optimiser steps this run took */
    int batch, ctx;         /* the shape of a step */
    double train_s;         /* the training loop's wall time (steps, validations, checkpoints) */
    double gen_tokens;      /* forecast: tokens generated (0: no forecast in this run) */
    double gen_units;       /* forecast: systems x samples x forecast steps */
    double gen_s;           /* forecast: wall time */
    double wall_s;          /* the whole run on the worker, setup included */
} ls_segment_cost;

/* One early-stopping decision (asha.h), as a record holds it and as ls_journal_state.decisions
 * keeps them, in order. value, cutoff and flops are exact doubles, NaN when there is none. */
typedef struct {
    uint64_t trial_id;      /* the unit judged (a configuration's repeat 0), or for arrived and
                             * stopped the trial itself */
    int verdict, rung, step, n_at_rung;
    double value, cutoff;
    double flops;           /* what the trial (arrived, stopped), or the unit's repeats together
                             * (paused, continue, cut), spent up to the rung: the budget counts a
                             * stopped trial by it */
} ls_journal_decision;

/* A cost record as the state keeps it. */
typedef struct {
    uint64_t trial_id;
    char key[LS_JOURNAL_TEXT_MAX]; /* the time model's key (timemodel.h) */
    ls_segment_cost cost;
} ls_journal_cost;

/* One record, decoded. Fields not used by the type are zero. */
typedef struct {
    ls_jrec_type type;
    double time;            /* unix seconds of the append */
    uint64_t trial_id;      /* 0 for sweep_start */
    uint64_t grid_hash;     /* sweep_start */
    int attempt, rank, device;
    int step;               /* progress, checkpoint */
    double loss, val_loss;  /* progress */
    ls_result_metrics metrics; /* done */
    char text[LS_JOURNAL_TEXT_MAX];
    ls_journal_decision decision; /* decision (its trial_id is the record's) */
    ls_segment_cost cost;   /* cost (its key in text) */
} ls_journal_record;

/* The message of a stopped trial (its row's error column too): rung, step, value. */
#define LS_JOURNAL_STOPPED_TEXT "stopped early at rung %d (step %d): val %.6g"

/* What replay knows of one trial. */
typedef struct {
    uint64_t id;
    ls_result_status status;
    int attempts;           /* trial_start records seen */
    int crashes;            /* attempts that ended with no word at all (the job died while the trial
                             * ran), the last one included when it is still open: a clean stop
                             * journals a checkpoint, an end journals done or failed */
    int open_attempt;       /* the last start has had no checkpoint, done or failed record since */
    int checkpoint_step;    /* last trial_checkpoint's step; 0 = none */
    int progress_step;      /* last trial_progress's step; 0 = none */
    double last_loss, last_val_loss;
    int rank, device;       /* of the last start */
    ls_result_metrics metrics; /* done */
    char message[LS_JOURNAL_TEXT_MAX]; /* failed: the error; skipped: the reason */
} ls_journal_trial;

/* The replayed state of a whole journal. Trials appear in the order of their first record. */
typedef struct {
    int n_records;          /* valid records */
    size_t valid_bytes;     /* magic + valid records */
    size_t discarded_bytes; /* torn tail after them (truncated by ls_journal_open) */
    int n_sweep_starts;     /* one per (re)started sweep job */
    double first_time;      /* unix time of the first record: when the sweep began; 0 none */
    uint64_t grid_hash;     /* of the last sweep_start; 0 if none */
    char job_id[LS_JOURNAL_TEXT_MAX]; /* of the last sweep_start */
    int n_trials, cap_trials;
    ls_journal_trial *trials;
    int *slots;             /* id -> 1 + index into trials (0 empty): open addressing, so that
                             * replay and lookups stay linear in a sweep of many trials */
    size_t n_slots;         /* a power of two, at least twice n_trials */
    int anomalies;          /* records that made no sense (a start after done, ...), ignored */
    int n_decisions, cap_decisions;
    ls_journal_decision *decisions; /* every decision record, in the order they were appended */
    int n_costs, cap_costs;
    ls_journal_cost *costs; /* every cost record, in order */
} ls_journal_state;

/* The trial's entry, or NULL when the journal never mentioned it (then it is pending). */
const ls_journal_trial *ls_journal_find(const ls_journal_state *st, uint64_t id);
/* The status of a trial: LS_RESULT_PENDING when not in the journal. */
ls_result_status ls_journal_status(const ls_journal_state *st, uint64_t id);
/* Count the trials in a status. */
int ls_journal_count(const ls_journal_state *st, ls_result_status status);
void ls_journal_state_free(ls_journal_state *st);

/* Read a journal file without locking or changing it. A missing file is an empty state (LS_OK).
 * LS_ERR with a message for a file that is not a journal, cannot be read, or is damaged in the
 * middle (see above). A torn tail is not an error: st->discarded_bytes says how much. */
int ls_journal_replay(const char *journal_path, ls_journal_state *st);

/* The journal's file names beside the results file: "<results>.journal" and "<results>.lock". */
void ls_journal_paths(const char *results_path, char *journal, size_t journal_cap, char *lock, size_t lock_cap);

typedef struct ls_journal ls_journal;

/* Take the sweep's lock (<results>.lock, flock, holding "job <job_id> pid <pid> host <host>"),
 * replay <results>.journal (creating it when missing), truncate a torn tail, and open it for
 * appending. LS_ERR when another process holds the lock (the message names its job and pid), or
 * for the errors of ls_journal_replay and of I/O. The lock is released by ls_journal_close or
 * when the process dies; the .lock file itself stays (removing it would race a new opener). */
int ls_journal_open(const char *results_path, const char *job_id, ls_journal **out);
/* The replayed state, kept current by every append. Valid until ls_journal_close. */
const ls_journal_state *ls_journal_current(const ls_journal *j);
/* Bytes of torn tail discarded when the journal was opened (also in the state). */
size_t ls_journal_discarded(const ls_journal *j);

/* Append one record: encode, write, fsync; the record counts (and the state changes) only when
 * this returns LS_OK. LS_ERR with a message (disk full, I/O error): the journal is then closed
 * for appending (later appends fail too): the caller must stop, and the next open replays what
 * was acknowledged. Text longer than LS_JOURNAL_TEXT_MAX - 1 bytes is cut. */
int ls_journal_append(ls_journal *j, const ls_journal_record *rec);

/* Shorthands for ls_journal_append. */
int ls_journal_sweep_start(ls_journal *j, uint64_t grid_hash, const char *job_id);
int ls_journal_trial_start(ls_journal *j, uint64_t id, int attempt, int rank, const char *host, int device);
int ls_journal_trial_progress(ls_journal *j, uint64_t id, int step, double loss, double val_loss);
int ls_journal_trial_checkpoint(ls_journal *j, uint64_t id, int step);
int ls_journal_trial_done(ls_journal *j, uint64_t id, const ls_result_metrics *m);
int ls_journal_trial_failed(ls_journal *j, uint64_t id, const char *message);
int ls_journal_trial_skipped(ls_journal *j, uint64_t id, const char *reason);
/* An early-stopping decision (asha.h). Verdict LS_ES_STOPPED makes the trial stopped (status
 * LS_RESULT_STOPPED, metrics.steps = step, final_val_loss = value, flops_total = flops). */
int ls_journal_trial_decision(ls_journal *j, const ls_journal_decision *d);
/* What a run of the trial took, under the time model's key (cut to LS_JOURNAL_TEXT_MAX - 1 bytes). */
int ls_journal_trial_cost(ls_journal *j, uint64_t id, const char *key, const ls_segment_cost *c);

/* Release the lock and close. LS_ERR if the final close fails (the records were already synced). */
int ls_journal_close(ls_journal *j);

/* Encode a record into buf (frame included); returns the bytes written, 0 if cap is too small.
 * Exposed for tests and tools. */
size_t ls_journal_encode(const ls_journal_record *rec, unsigned char *buf, size_t cap);

#endif
