/*
 * sweep.h: the MPI scheduler and its workers (every MPI call of the program lives in sweep.c).
 *
 * Rank 0 schedules and runs no model: it holds a queue of trials (largest estimated cost first),
 * hands one to each worker that asks, receives their progress and results, and reports every
 * event to the caller through hooks (the journal and the results file hang there). Ranks >= 1 are
 * workers: ask, run the trial, stream progress, send the result, ask again. Dispatch is trial by
 * trial as workers free up, never in batches. With early stopping the work appears as results
 * come in (ls_sweep_schedule_next): a unit is a rung segment (ls_sweep_item.pause_step), and a
 * free worker may wait until a paused trial makes another promotable.
 *
 * Stopping: a stop request on rank 0 (a signal, a wall-clock limit) stops handing out work and
 * tells the busy workers, which checkpoint their trial and report it as interrupted; a signal a
 * worker receives itself does the same. No MPI call is made from a signal handler.
 *
 * Data-parallel trials (train.ranks_per_trial = k > 1, one k per sweep): the workers form groups
 * of k consecutive ranks (ranks 1..k, k+1..2k, ...; consecutive ranks usually share a node). The
 * group's first rank, its leader, is the only one rank 0 knows: it asks for work, broadcasts each
 * assignment to its group, and sends the heartbeats and the result; every rank of the group runs
 * the trial (through an ls_train_group over the group's communicator). Workers left over when
 * their count is not a multiple of k stay idle (ls_sweep_groups counts them); with fewer than k
 * workers there is no group, and the caller refuses to start.
 */
#ifndef LORASWEEP_SWEEP_H
#define LORASWEEP_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "lorasweep/journal.h"

/* What a worker reports about its trial. */
typedef enum {
    LS_TRIAL_DONE,        /* finished: metrics valid */
    LS_TRIAL_FAILED,      /* stopped by an error: message set */
    LS_TRIAL_INTERRUPTED, /* stopped on request after a checkpoint: to be continued */
    LS_TRIAL_PAUSED,      /* reached the item's pause_step (a rung of early stopping), validated and
                           * checkpointed there: metrics.steps and final_val_loss say where and what */
    LS_TRIAL_MACHINE,     /* stopped by a fault of the machine (a full disk, an I/O error: message
                           * set), not of the trial: not recorded as failed; the sweep stops and a
                           * later run continues it from its last checkpoint */
} ls_trial_status;

/* The numbers a result carries back to rank 0 (the bulk data is written by the worker itself). */
typedef struct {
    ls_trial_status status;
    ls_result_metrics metrics;     /* everything the journal keeps of a done trial (so that a
                                    * rebuilt results file loses nothing); steps also when
                                    * interrupted; NaN for what was not measured */
    char message[512];             /* the error of a failed trial */
    ls_segment_cost cost;          /* what this run took (the time model's sample; timemodel.h) */
} ls_trial_summary;

typedef struct {
    int step, max_steps;
    double loss, val_loss, tokens_per_s, eta_s; /* val_loss NaN unless a validation just ran */
} ls_trial_heartbeat;

/* One unit of work as rank 0 hands it out. */
typedef struct {
    uint64_t id;
    int index;                     /* the caller's index of the trial (stable across reruns) */
    double cost;                   /* estimated FLOPS: larger first */
    char *payload;                 /* text the worker's run function gets (the trial's YAML) */
    int pause_step;                /* > 0: train to this step (a rung), checkpoint and report
                                    * LS_TRIAL_PAUSED; 0: to the end */
} ls_sweep_item;

struct ls_train_group;

/* Worker side: run one trial. `heartbeat` may be called at any time to report progress, and
 * `should_stop` polled (it also receives rank 0's stop message); both take `ctx`. `group` is NULL
 * for a trial on one rank; in a data-parallel group every rank runs the trial with the group,
 * only the leader's (group rank 0) heartbeats and result reach rank 0, and only the leader must
 * write the trial's files. */
typedef int (*ls_sweep_run_fn)(void *user, const ls_sweep_item *item, const struct ls_train_group *group,
                               void (*heartbeat)(void *ctx, const ls_trial_heartbeat *hb), int (*should_stop)(void *ctx),
                               void *ctx, ls_trial_summary *out);

/* Rank 0 side: what happened. Any hook may be NULL. */
/* What a worker says of itself when it asks for work. */
typedef struct {
    int device;      /* its GPU, -1 for the CPU */
    int threads;     /* its compute threads (ls_cpu_threads) */
    char host[64];   /* its host name */
} ls_sweep_worker_info;

typedef struct {
    void (*on_start)(void *user, const ls_sweep_item *item, int worker_rank, const ls_sweep_worker_info *worker);
    void (*on_heartbeat)(void *user, const ls_sweep_item *item, int worker_rank, const ls_trial_heartbeat *hb);
    void (*on_result)(void *user, const ls_sweep_item *item, int worker_rank, const ls_trial_summary *s);
    /* Polled between messages: non-zero asks for a clean stop (signal, wall-clock limit). */
    int (*should_stop)(void *user);
    void *user;
    /* A worker with a trial that has sent nothing for hang_timeout_s seconds (0: never) is taken
     * for hung (stopped, swapped out, deadlocked): on_hung is told, the other workers are asked
     * to checkpoint and stop, and ls_sweep_schedule returns without waiting for the hung one
     * (whose rank then never reaches a collective call: the caller must end with
     * ls_sweep_abort). */
    double hang_timeout_s;
    void (*on_hung)(void *user, const ls_sweep_item *item, int worker_rank, const char *host, double silent_s);
} ls_sweep_hooks;

typedef struct {
    int rank, size;                /* in MPI_COMM_WORLD */
    int local_rank, local_size;    /* on this node */
    int workers_on_node;           /* ranks >= 1 on this node */
    int local_worker;              /* this worker's index among them (0-based); -1 on rank 0 */
    int cpu_sharers;               /* workers on this node allowed the same CPUs as this one (itself
                                    * included): they share them (ls_thread_count) */
    int device;                    /* the GPU this worker owns (an index into the node's devices as
                                    * CUDA_VISIBLE_DEVICES listed them, or as CUDA numbers them
                                    * when it is unset), or -1: CPU */
} ls_sweep_place;

/* MPI_Init_thread and the node-local placement; LS_ERR if MPI cannot start. A worker is given
 * one GPU (gpu.h, ls_gpu_bind): node-local rank r owns device r mod n of the node's n devices,
 * those CUDA_VISIBLE_DEVICES lists when it is set (Slurm and mpirun set it per node), else those
 * the driver's device files count. Its own CUDA_VISIBLE_DEVICES is narrowed to that one device
 * before any CUDA call (before MPI_Init where the launcher's environment gives the node-local
 * rank), so every backend sees exactly its device as device 0. Without devices (or with
 * "NoDevFiles" / an empty list) workers run on their share of the CPU cores. */
int ls_sweep_mpi_init(int *argc, char ***argv, ls_sweep_place *place);
void ls_sweep_mpi_finalize(void);
/* Abort every rank (an infrastructure failure on one rank). */
void ls_sweep_abort(int code);

/* Groups of ranks_per_trial among the size - 1 workers of a world of `size` ranks; *idle gets the
 * workers left over. 0 groups: nothing can run. */
int ls_sweep_groups(int size, int ranks_per_trial, int *idle);

/* Rank 0: hand out items (sorted here, largest cost first) to groups of ranks_per_trial workers
 * (1: every worker alone) until done or stopped; returns when every group has been released.
 * *stopped tells whether a stop cut it short. Every rank must use the same ranks_per_trial, and
 * ls_sweep_groups must find at least one group. The worker_rank of the hooks is the leader's. */
int ls_sweep_schedule(ls_sweep_item *items, int n, int ranks_per_trial, const ls_sweep_hooks *hooks, int *stopped);
/* The order ls_sweep_schedule hands items out in: largest cost first, then by index. */
void ls_sweep_items_sort(ls_sweep_item *items, int n);
/* Rank 0, with work that appears as results come in (early stopping: a trial paused at a rung
 * may make another promotable) or that depends on the asking worker and the time left (the time
 * limit): when a group is free, next(hooks->user, worker, &item) is asked for work (worker: what
 * the group's leader said of itself): 1 = item filled (it and its payload must stay valid until on_result or on_hung for it);
 * 0 = nothing now (the group waits and next is asked again after each result); -1 = nothing any
 * more (the group is released). Groups that wait while no trial runs are released (no result can
 * come to change the answer). Otherwise as ls_sweep_schedule. */
int ls_sweep_schedule_next(int (*next)(void *user, const ls_sweep_worker_info *worker, ls_sweep_item *item),
                           int ranks_per_trial,
                           const ls_sweep_hooks *hooks, int *stopped);
/* Ranks >= 1: work until released (an idle rank returns at once). */
int ls_sweep_work(ls_sweep_run_fn run, void *user, const ls_sweep_place *place, int ranks_per_trial);

/* The run function for real trials: the item's payload is the trial's resolved YAML (with
 * absolute paths); its files go to trials_dir/<id>/ (adapter, checkpoint, curves, metrics,
 * forecasts); it resumes from the checkpoint there. Failures come back as LS_TRIAL_FAILED.
 * With model_cache, the worker keeps the model it read for its next trials (trial.h). */
struct ls_model_cache_s;
typedef struct {
    const char *trials_dir;
    int (*local_stop)(void); /* a signal this rank received; may be NULL */
    struct ls_model_cache_s *model_cache; /* may be NULL: every trial reads its model */
} ls_sweep_worker_options;
int ls_sweep_run_trial(void *user, const ls_sweep_item *item, const struct ls_train_group *group,
                       void (*heartbeat)(void *ctx, const ls_trial_heartbeat *hb), int (*should_stop)(void *ctx),
                       void *ctx, ls_trial_summary *out);

/* The same, handing the trial's full result to the caller (res_out, freed with
 * ls_trial_result_free) so that it can write it elsewhere (the results file). In a group, only
 * the leader writes the trial's directory and sends heartbeats. */
struct ls_trial_result_s;
int ls_sweep_run_trial_keep(const ls_sweep_worker_options *opt, const ls_sweep_item *item,
                            const struct ls_train_group *group,
                            void (*heartbeat)(void *ctx, const ls_trial_heartbeat *hb), int (*should_stop)(void *ctx),
                            void *ctx, ls_trial_summary *out, struct ls_trial_result_s *res_out);

/* `lorasweep sweep run`: every rank calls it after ls_sweep_mpi_init (see sweep_run.c). Returns
 * the exit status: 0 done, 1 failures, 3 stopped with everything checkpointed, 4 stopped by a
 * fault of the machine (a full disk, an I/O error) with what could be checkpointed checkpointed,
 * 5 a worker stopped answering (the job is aborted once the others checkpointed). */
typedef struct {
    const char *grid_path;
    const char *out_path;  /* the results file; NULL: the grid's results/<name>.h5 */
    double walltime_s;     /* this run's time limit: only work the time model says ends before it
                            * starts, and whatever runs is checkpointed at it; 0 = none given
                            * (under Slurm, the job's end: SLURM_JOB_END_TIME) */
    double stop_margin_s;  /* with SLURM_JOB_END_TIME: stop this long before the job's end */
    int quiet;
    int retry_failed;      /* run failed trials again (each a new attempt) */
    double hang_timeout_s; /* a worker silent this long is hung: stop, exit 5 (0: never) */
} ls_sweep_run_options;
int ls_sweep_run(const ls_sweep_run_options *opt, const ls_sweep_place *place);


/* Every rank of the world as one data-parallel group (MPI_Allreduce, as a sweep's groups), for
 * tests and tools that run one trial on every rank; freed with ls_sweep_group_free. */
struct ls_train_group *ls_sweep_group_world(void);
void ls_sweep_group_free(struct ls_train_group *g);

/* Every rank: the same value of v everywhere, from rank 0 (for counts and flags). */
void ls_sweep_broadcast_int(int *v);
/* Every rank: a string from rank 0 (malloc'ed on the others; NULL stays NULL). */
char *ls_sweep_broadcast_string(const char *s);
void ls_sweep_barrier(void);

#endif
