/*
 * train.h: LoRA training of one trial: token windows from a data set, the optimisers and
 * learning-rate schedules, the training loop with validation, and checkpoints that resume a run
 * exactly where it stopped.
 *
 * Determinism: with the same options, data, seed, machine and thread count, a run repeats bit for
 * bit, and a run stopped at a checkpoint and resumed gives the same adapter as one never stopped:
 * the data order of epoch e is a shuffle seeded by (seed, e), so the checkpoint needs only the
 * step, the epoch and the position in it, besides the adapter and the optimiser moments.
 */
#ifndef LORASWEEP_TRAIN_H
#define LORASWEEP_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "lorasweep/backend.h"
#include "lorasweep/data.h"
#include "lorasweep/model.h"
#include "lorasweep/text.h"
#include "lorasweep/tokenizer.h"

/* ---- token windows ------------------------------------------------------------------------ */

/* Training windows over several token sequences: window w covers tokens[start[w] ..
 * start[w] + valid[w]) of one sequence, padded to ctx. */
typedef struct {
    int ctx;
    int32_t *tokens;   /* every sequence, concatenated */
    int64_t n_tokens;
    int n_windows;
    int64_t *start;    /* (n_windows) */
    int *valid;        /* (n_windows) real tokens, 2..ctx */
} ls_window_set;

/* How series become text: a fixed alpha, or auto over the training systems (scope dataset) or
 * per system. */
typedef struct {
    double alpha;           /* > 0 fixed; <= 0 means auto */
    int per_system;         /* auto per system instead of over the training set */
    double auto_percentile; /* 99 */
    double auto_target;     /* 10 */
    int decimals;
} ls_encoding;

/* alpha of system s under enc: the fixed value, the data set's (dataset_alpha) or the system's
 * own from its first `steps` steps. */
double ls_encoding_alpha(const ls_encoding *enc, const ls_dataset *ds, int system, int steps, double dataset_alpha);
/* The data-set-wide auto alpha over the given systems (all steps). */
double ls_encoding_dataset_alpha(const ls_encoding *enc, const ls_dataset *ds, const int *systems, int n);

/* Encode and tokenize each listed system in full and cut it into windows of ctx tokens moving by
 * stride (<= 0: ctx / 2). */
int ls_windows_build(ls_window_set *out, const ls_dataset *ds, const int *systems, int n_systems,
                     const ls_encoding *enc, double dataset_alpha, const ls_tokenizer *tok, int ctx, int stride);
void ls_window_set_free(ls_window_set *w);

/* ---- options ------------------------------------------------------------------------------ */

typedef enum { LS_OPTIMIZER_ADAMW, LS_OPTIMIZER_SGD } ls_optimizer;
typedef enum { LS_SCHEDULE_CONSTANT, LS_SCHEDULE_LINEAR, LS_SCHEDULE_COSINE } ls_schedule;

typedef struct {
    int batch_size, max_steps;
    ls_optimizer optimizer;
    float lr, beta1, beta2, eps, weight_decay, momentum;
    float grad_clip;        /* max global gradient norm; 0 = off */
    ls_schedule schedule;
    int warmup_steps;       /* linear warmup from 0 */
    float min_lr_ratio;     /* the schedule decays to lr * min_lr_ratio */
    int eval_every;         /* validation every N steps (and at step 0 and the end); 0 = 0 and end */
    int val_max_windows;    /* validation on the first N windows; 0 = all */
    int checkpoint_every;   /* 0 = only at the end */
    int pause_step;         /* > 0 and < max_steps: stop after this step (a rung of early stopping),
                             * validating there whatever eval_every says, and checkpoint; the schedule
                             * stays the one over max_steps, so a paused run resumed later takes
                             * exactly the steps of one never paused. 0: run to max_steps */
    uint64_t seed;          /* data order */
    int32_t pad_id;         /* token id written into padding (never a target) */
} ls_train_options;

/* The learning rate of step (1-based). */
float ls_train_lr(const ls_train_options *o, int step);

/* One optimiser step as the training loop takes it, on n floats of backend memory: the gradient's
 * global norm (*norm, before clipping), clipping as PyTorch's clip_grad_norm_ does (grads scaled
 * by grad_clip / (norm + 1e-6) when norm > grad_clip > 0), then AdamW (m, v: the moments) or SGD
 * (m: the momentum buffer; v unused) at learning rate lr for step (1-based). LS_ERR with a
 * message when the norm is not finite (nothing is changed) or the backend failed. */
int ls_train_optimizer_step(const ls_backend *be, const ls_train_options *o, float *params, float *grads, float *m,
                            float *v, size_t n, float lr, int step, float *norm);

/* ---- the run ------------------------------------------------------------------------------ */

/* Everything a checkpoint holds besides the options: continue from here. */
typedef struct {
    int capacity;             /* steps the curves have room for (max_steps at init) */
    int step;                 /* optimiser steps done */
    int epoch, cursor;        /* position in the data order */
    ls_lora grads, m, v;      /* gradient buffer and optimiser moments (SGD uses m as momentum) */
    float *train_loss;        /* (max_steps) mean loss of each step */
    int n_evals;
    int *eval_step;           /* (n_evals) */
    float *val_loss;          /* (n_evals) */
    double train_tokens;      /* target tokens seen */
    double train_seconds;     /* wall time spent in steps (summed over resumed runs) */
    double wall_seconds;      /* the trial's wall time over all its attempts when last checkpointed
                               * (set by the trial's checkpoint hook; 0: not known) */
    double wall_seconds_before; /* what the checkpoint this run resumed from had: earlier attempts */
    uint64_t data_checksum;   /* ls_data_file_checksum of the data trained on; 0: not known */
} ls_train_state;

void ls_train_state_init(ls_train_state *st, const ls_lora *lora, const ls_model_config *cfg, int max_steps);
void ls_train_state_free(ls_train_state *st);

/* What the loop reports after each step and each validation. */
typedef struct {
    int step, max_steps;
    float loss;               /* this step's mean training loss */
    float val_loss;           /* NaN unless a validation just ran */
    float lr, grad_norm;
    double tokens_per_s;      /* target tokens per second of this run so far */
    double eta_s;
} ls_train_progress;

typedef struct {
    void (*on_progress)(void *ctx, const ls_train_progress *p);
    /* Called when a checkpoint is due; return LS_OK or LS_ERR (stops the run with that error). */
    int (*on_checkpoint)(void *ctx, const ls_train_state *st, const ls_lora *lora);
    /* Polled between steps: non-zero stops the run cleanly after a checkpoint (signal handling). */
    int (*should_stop)(void *ctx);
    void *ctx;
} ls_train_hooks;

/* ---- data parallel ------------------------------------------------------------------------ */

/* The processes that train one adapter together (train.ranks_per_trial > 1). Every rank holds the
 * whole model, adapter and optimiser state and the whole window set; each step, every rank picks
 * the same global batch of batch_size windows and runs forward and backward on its own contiguous
 * share of it (rank r: windows [r*B/size, (r+1)*B/size), so uneven shares are allowed); the
 * gradients are summed over the group before clipping and the optimiser step. Each rank scales its
 * loss by 1 / (target tokens of the whole global batch), so the sum is exactly the gradient of the
 * global batch's mean loss, however the tokens fall to the ranks. The ranks then take identical
 * steps and stay identical replicas. NULL everywhere means one process.
 *
 * Implementations: MPI_Allreduce over the group's communicator (sweep.c, CPU backend) and, for
 * device memory, NCCL (reduce_nccl.h, CUDA builds). Each call is collective: every rank of the
 * group makes the same calls in the same order, which is why the trainer agrees on every decision
 * that one rank could take alone (stop, errors, a failed checkpoint). */
typedef struct ls_train_group {
    int rank, size;
    /* Sum x (n floats of backend memory) over the group in place: the same bits on every rank,
     * and the same bits on a rerun. LS_OK or LS_ERR. */
    int (*sum_floats)(void *ctx, float *x, size_t n);
    /* Sum x (n doubles of host memory) over the group in place: losses, counts, flags. */
    int (*sum_doubles)(void *ctx, double *x, int n);
    /* Every rank gets group rank 0's bytes (host memory): setting up NCCL's ncclUniqueId. */
    int (*broadcast)(void *ctx, void *buf, size_t bytes);
    void *ctx;
} ls_train_group;

/* Non-zero on every rank when ok is non-zero on every rank of the group (ok itself without one).
 * A communication failure counts as not ok. */
int ls_train_group_agree(const ls_train_group *g, int ok);

/* Mean loss over the first max_windows windows (0 = all), batch_size at a time. m and lora are
 * in backend memory (ls_model_to_backend, ls_lora_to_backend; the host objects on the CPU).
 * NAN when the backend fails (be->check() then has the message). */
double ls_train_evaluate(const ls_backend *be, const ls_model *m, const ls_lora *lora, const ls_window_set *w,
                         int batch_size, int max_windows, int32_t pad_id);

/* The same with the windows shared by a group (each rank evaluates its contiguous share, the
 * sums are reduced): the same value on every rank. NULL group: ls_train_evaluate. */
double ls_train_evaluate_group(const ls_backend *be, const ls_model *m, const ls_lora *lora, const ls_window_set *w,
                               int batch_size, int max_windows, int32_t pad_id, const ls_train_group *group);

/* Train lora from st (fresh or loaded from a checkpoint) until max_steps or should_stop.
 * m is in backend memory (ls_model_to_backend); lora and st are host objects: on a device
 * backend they are copied there for the run and copied back before each checkpoint hook and at
 * the end (on the CPU they are used in place).
 * Returns LS_OK, or LS_ERR with a message (a non-finite loss, memory). With a group (data
 * parallel, see above; NULL: one process) every rank must call it with the same options, windows,
 * adapter and state; every rank gets the same losses and ends with the same adapter and the same
 * return value. Hooks are called on every rank: the caller lets group rank 0 alone write files and
 * report progress; should_stop counts when any rank asks, and a checkpoint hook failing on any rank
 * fails the run everywhere. */
int ls_train_run(const ls_backend *be, const ls_model *m, ls_lora *lora, const ls_window_set *train,
                 const ls_window_set *val, const ls_train_options *o, ls_train_state *st, const ls_train_hooks *hooks,
                 const ls_train_group *group);

/* Checkpoint files: DIR/state.safetensors (adapter, moments, curves; step, epoch, cursor, the data
 * checksum in the metadata). Save is atomic (temp + rename). Load checks everything it reads
 * before using it, with one line naming the file: the tensors match lora's layout, step, epoch,
 * cursor and n_evals are whole numbers in range (step at most st->capacity), the counters finite,
 * the validation steps increasing up to step, and data_checksum, when present, well formed (0 in
 * st when absent: a checkpoint older than the field). Whether the position fits the data and the
 * data is the same is the caller's to check (ls_trial_run does), and ls_train_run refuses a state
 * whose position is past its windows. */
int ls_train_checkpoint_save(const char *dir, const ls_train_state *st, const ls_lora *lora,
                             const ls_model_config *cfg);
int ls_train_checkpoint_load(const char *dir, ls_train_state *st, ls_lora *lora, const ls_model_config *cfg);

#endif
