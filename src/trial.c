/*
 * trial.c: one trial, from configuration to results (see trial.h).
 *
 * The order of work is chosen so that a bad input fails in seconds, before any training: the
 * tokenizer, the data and the split, the model, then the windows; training; the forecast last.
 * FLOPS follow the course's rules (flops.h) for what actually ran: every training step,
 * every validation pass (forward only), every generated sample.
 */
#include "lorasweep/trial.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lorasweep/check.h"
#include "lorasweep/common.h"
#include "lorasweep/fault.h"
#include "lorasweep/flops.h"
#include "lorasweep/qwen2.h"
#include "lorasweep/reduce_nccl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

ls_encoding ls_trial_encoding(const ls_trial_config *cfg) {
    return (ls_encoding){
        .alpha = cfg->encoding.alpha,
        .per_system = cfg->encoding.alpha_scope == LS_CONFIG_SCOPE_SYSTEM,
        .auto_percentile = cfg->encoding.alpha_percentile,
        .auto_target = cfg->encoding.alpha_target,
        .decimals = cfg->encoding.decimals,
    };
}

static ls_train_options train_options_of(const ls_trial_config *cfg, int32_t pad_id) {
    const ls_config_train *t = &cfg->train;
    return (ls_train_options){
        .batch_size = t->batch_size,
        .max_steps = t->max_steps,
        .optimizer = t->optimizer == LS_CONFIG_OPTIMIZER_SGD ? LS_OPTIMIZER_SGD : LS_OPTIMIZER_ADAMW,
        .lr = (float)t->lr,
        .beta1 = (float)t->beta1,
        .beta2 = (float)t->beta2,
        .eps = (float)t->eps,
        .weight_decay = (float)t->weight_decay,
        .momentum = (float)t->momentum,
        .grad_clip = (float)t->grad_clip,
        .schedule = t->schedule == LS_CONFIG_SCHEDULE_COSINE   ? LS_SCHEDULE_COSINE
                    : t->schedule == LS_CONFIG_SCHEDULE_LINEAR ? LS_SCHEDULE_LINEAR
                                                               : LS_SCHEDULE_CONSTANT,
        .warmup_steps = t->warmup_steps,
        .min_lr_ratio = (float)t->min_lr_ratio,
        .eval_every = t->eval_every,
        .val_max_windows = t->val_max_windows,
        .checkpoint_every = t->checkpoint_every,
        .seed = t->seed,
        .pad_id = pad_id,
    };
}

static ls_flops_lora flops_lora_of(const ls_lora *l) { return (ls_flops_lora){l->rank, l->targets, l->head_bias}; }

/* The trainer's hooks have one context; the trial's adds the checkpoint directory to the
 * caller's progress and stop hooks. */
typedef struct {
    const ls_trial_hooks *outer;
    const char *dir;
    int writer; /* this rank writes the checkpoint: alone, or rank 0 of a group */
    ls_train_state *state; /* the trainer's state (what it checkpoints): its wall time is set here */
    double t_start, wall_before; /* this attempt's start; the earlier attempts' wall time */
} trial_hooks_ctx;

static void trial_progress(void *ctx, const ls_train_progress *p) {
    const trial_hooks_ctx *t = ctx;
    if (t->outer && t->outer->train.on_progress) t->outer->train.on_progress(t->outer->train.ctx, p);
}

static int trial_should_stop(void *ctx) {
    const trial_hooks_ctx *t = ctx;
    return t->outer && t->outer->train.should_stop && t->outer->train.should_stop(t->outer->train.ctx);
}

static int trial_checkpoint(void *ctx, const ls_train_state *st, const ls_lora *lora) {
    const trial_hooks_ctx *t = ctx;
    if (!t->dir || !t->writer) return LS_OK;
    if (ls_mkdirs(t->dir) != LS_OK) return LS_ERR;
    /* the trial's wall time over all its attempts so far: the next attempt goes on from it */
    t->state->wall_seconds = t->wall_before + (ls_now() - t->t_start);
    return ls_train_checkpoint_save(t->dir, st, lora, NULL);
}

/* model.backend by name (ls_backend_named): cpu always works; cuda needs a CUDA build and a
 * device, or it is an error; auto takes CUDA when both are there, else the CPU, and says so on
 * stderr (once per process: a sweep runs many trials) only when it takes CUDA.
 *
 * Data parallel on the CUDA backend: the gradient arena is device memory, which the MPI group's
 * sum would read on the host, so ls_trial_run wraps the group with ls_nccl_group_init
 * (reduce_nccl.h: an NCCL communicator from an ncclUniqueId broadcast over the group's MPI
 * communicator) before ls_train_run, and frees it after; a build without NCCL refuses the trial.
 * The CPU backend uses the MPI group as it is. */
static const ls_backend *backend_of(const ls_trial_config *cfg) {
    static const char *const names[] = {"auto", "cpu", "cuda"};
    char why[300];
    int cuda = 0;
    const ls_backend *be = ls_backend_named(names[cfg->model.backend], &cuda, why, sizeof why);
    if (!be) {
        ls_error_prefix("model.backend");
        return NULL;
    }
    static int told; /* auto says once when it takes the GPU (on the CPU it stays quiet) */
    if (cfg->model.backend == LS_CONFIG_BACKEND_AUTO && cuda && !told++)
        fprintf(stderr, "lorasweep: model.backend auto: using the CUDA backend (%s)\n", why);
    return be;
}

/* Load the checkpoint in dir and check it belongs to this data: made from the same bytes (its
 * data_checksum; a checkpoint without one, from before the field, is taken on its position alone),
 * and its position in the data order inside the training windows (order[cursor] is read next). */
static int resume(const char *dir, const char *state_path, const ls_trial_config *cfg, const ls_model_config *mc,
                  ls_trial_result *out, int n_windows) {
    if (ls_train_checkpoint_load(dir, &out->train, &out->adapter, mc) != LS_OK) return LS_ERR;
    char was[32], now[32];
    ls_data_checksum_text(out->train.data_checksum, was, sizeof was);
    ls_data_checksum_text(out->data_checksum, now, sizeof now);
    if (out->train.data_checksum && out->train.data_checksum != out->data_checksum)
        return ls_error("%s: the data file changed since this checkpoint was made (%s, checkpoint %s): put the "
                        "original data back to resume, or delete %s to train from the start",
                        cfg->resolved.data_path, now, was, dir);
    if (out->train.cursor > n_windows)
        return ls_error("%s: the checkpoint is at window %d of an epoch, but %s has %d training windows: it was made "
                        "from other data; delete %s to train from the start",
                        state_path, out->train.cursor, cfg->resolved.data_path, n_windows, dir);
    return LS_OK;
}

void ls_model_cache_free(ls_model_cache *c) {
    if (c->dir) {
        ls_model_backend_free(c->be, &c->dev);
        ls_model_free(&c->host);
        free(c->dir);
    }
    long loads = c->loads, reuses = c->reuses;
    memset(c, 0, sizeof *c);
    c->loads = loads, c->reuses = reuses; /* the counts outlive what they counted */
}

/* The trial's model, host and backend copies: the cache's when it holds this directory, read on
 * this backend, with files unchanged since; otherwise read (into the cache when there is one,
 * after freeing what it held). */
static int model_acquire(ls_model_cache *cache, const ls_backend *be, const char *dir, ls_model *host,
                         ls_model *dev) {
    uint64_t fp = 0;
    if (cache && ls_model_fingerprint(dir, &fp) != LS_OK) return LS_ERR;
    if (cache && cache->dir && cache->be == be && !strcmp(cache->dir, dir) && cache->fingerprint == fp) {
        *host = cache->host, *dev = cache->dev;
        cache->reuses++;
        return LS_OK;
    }
    if (cache) ls_model_cache_free(cache); /* one model at a time: 2 GB for Qwen2.5-0.5B */
    if (ls_model_load(dir, host) != LS_OK) return LS_ERR;
    if (ls_model_to_backend(be, host, dev) != LS_OK) {
        ls_model_free(host);
        return LS_ERR;
    }
    if (cache) {
        cache->dir = ls_strdup(dir), cache->be = be, cache->fingerprint = fp;
        cache->host = *host, cache->dev = *dev;
        cache->loads++;
    }
    return LS_OK;
}

int ls_trial_run(const ls_trial_config *cfg, const ls_trial_hooks *hooks, ls_trial_result *out) {
    memset(out, 0, sizeof *out);
    double t_start = ls_now();
    out->id = ls_config_hash(cfg);
    out->final_train_loss = out->final_val_loss = NAN;
    const ls_train_group *group = hooks ? hooks->group : NULL;
    ls_model_cache *cache = hooks ? hooks->model_cache : NULL;
    int writer = !group || group->rank == 0, agreed = 0;
    const ls_backend *be = backend_of(cfg);
    if (!be) { /* the same config on every rank, but a lost device is one rank's: its group learns */
        if (group) {
            char why[1024];
            int machine = ls_error_is_machine();
            snprintf(why, sizeof why, "%s", ls_last_error());
            ls_train_group_agree(group, 0);
            if (machine) ls_error_machine("%s", why);
            else ls_error("%s", why);
        }
        return LS_ERR;
    }
    if (cfg->train.threads > 0) ls_cpu_threads_set(cfg->train.threads);

    int rc = LS_ERR;
    ls_tokenizer *tok = NULL;
    ls_dataset ds = {0};
    ls_split split = {0};
    ls_model model = {0}, dev_model = {0}; /* dev_*: in backend memory (aliases on the CPU) */
    ls_lora dev_adapter = {0};
    ls_window_set train_w = {0}, val_w = {0};
    ls_model_config mc;
#ifdef LS_HAVE_NCCL
    ls_train_group nccl = {0}; /* the group with NCCL sums, on a device backend */
#endif
    if (ls_fault("trial_run")) { /* tests: a trial that fails by its own fault */
        ls_error("a failure injected by LS_FAULT at trial_run");
        goto done;
    }
    if (cfg->train.ranks_per_trial != (group ? group->size : 1)) {
        ls_error("train.ranks_per_trial: %d, but this trial runs on %d rank%s (more than one needs a sweep: "
                 "lorasweep sweep run under mpirun)", cfg->train.ranks_per_trial, group ? group->size : 1,
                 group && group->size > 1 ? "s" : "");
        goto done;
    }
#ifndef LS_HAVE_NCCL
    if (group && group->size > 1 && !be->host_memory) { /* the same build on every rank: all fail here */
        ls_error("train.ranks_per_trial: %d on the %s backend sums device gradients with NCCL, which this build "
                 "lacks (build with NCCL found, or use model.backend: cpu, or ranks_per_trial: 1)",
                 cfg->train.ranks_per_trial, be->name);
        goto done;
    }
#endif
    /* Everything that can be checked before the weights are read and anything runs (check.h):
     * the files, train.ctx, the split and the forecast against the model and the data. */
    const char *src = cfg->source ? cfg->source : "<config>";
    if (ls_check_files(cfg, NULL, &mc) != LS_OK || ls_check_ctx(cfg, &mc) != LS_OK) goto done;
    if (!(tok = ls_tokenizer_load(cfg->resolved.tokenizer))) {
        ls_error_prefix("%s: model.tokenizer", src);
        goto done;
    }
    if (ls_model_check_tokenizer(&mc, ls_tokenizer_n_ids(tok), cfg->resolved.tokenizer) != LS_OK) goto done;
    if (ls_dataset_read(cfg->resolved.data_path, &ds) != LS_OK) {
        ls_error_prefix("%s: data.path", src);
        goto done;
    }
    /* the data's identity: a checkpoint is only resumed on the same bytes */
    if (ls_data_file_checksum(cfg->resolved.data_path, &out->data_checksum) != LS_OK) goto done;
    if (ls_check_split(cfg, ds.systems) != LS_OK) goto done;
    if (ls_split_make(ds.systems, cfg->split.test_systems, cfg->split.val_fraction, cfg->split.seed, &split) != LS_OK) {
        ls_error_prefix("%s", src);
        goto done;
    }
    ls_encoding enc = ls_trial_encoding(cfg);
    out->alpha = ls_encoding_dataset_alpha(&enc, &ds, split.train, split.n_train);
    if (ls_check_forecast(cfg, &mc, tok, &ds, &split, out->alpha) != LS_OK) goto done;
    if (hooks && hooks->adapter_dir && ls_lora_load(hooks->adapter_dir, &mc, &out->adapter) != LS_OK) goto done;

    if (model_acquire(cache, be, cfg->resolved.model_path, &model, &dev_model) != LS_OK) {
        ls_error_prefix("%s: model.path", src);
        goto done;
    }
    out->model_cfg = model.cfg;
    if (!(hooks && hooks->adapter_dir)) {
        ls_lora_init(&out->adapter, &model.cfg, cfg->lora.rank, (float)ls_config_lora_alpha(cfg), cfg->lora.targets,
                     cfg->lora.head_bias);
        ls_lora_reset(&out->adapter, &model.cfg, cfg->lora.seed);
    }
    int32_t pad_id = model.cfg.eos_id >= 0 && model.cfg.eos_id < model.cfg.vocab_size ? model.cfg.eos_id : 0;
    if (ls_windows_build(&train_w, &ds, split.train, split.n_train, &enc, out->alpha, tok, cfg->train.ctx,
                         ls_config_stride(cfg)) != LS_OK ||
        ls_windows_build(&val_w, &ds, split.val, split.n_val, &enc, out->alpha, tok, cfg->train.ctx,
                         ls_config_stride(cfg)) != LS_OK)
        goto done;
    out->n_train_windows = train_w.n_windows;
    out->n_val_windows = val_w.n_windows;

    /* Training, resumed from the checkpoint when there is one. */
    ls_train_options opt = train_options_of(cfg, pad_id);
    opt.pause_step = hooks ? hooks->pause_step : 0;
    ls_train_state_init(&out->train, &out->adapter, &model.cfg, cfg->train.max_steps);
    const char *ckpt = hooks ? hooks->checkpoint_dir : NULL;
    char state_path[4096];
    if (ckpt) {
        snprintf(state_path, sizeof state_path, "%s/state.safetensors", ckpt);
        if (access(state_path, R_OK) == 0 && resume(ckpt, state_path, cfg, &model.cfg, out, train_w.n_windows) != LS_OK)
            goto done;
    }
    out->train.data_checksum = out->data_checksum; /* what every checkpoint of this run records */
    /* From here a group works together: every rank must have set up, from the same checkpoint. */
    agreed = 1;
    if (!ls_train_group_agree(group, 1)) {
        ls_error("another rank of the group could not set up the trial");
        goto done;
    }
    if (group) {
        double lead_step = group->rank == 0 ? out->train.step : 0; /* rank 0's step, by a sum */
        if (group->sum_doubles(group->ctx, &lead_step, 1) != LS_OK ||
            !ls_train_group_agree(group, lead_step == out->train.step)) {
            ls_error("the ranks of the group resumed from different checkpoints (is %s on a shared file system?)",
                     ckpt ? ckpt : "the checkpoint");
            goto done;
        }
    }
#ifdef LS_HAVE_NCCL
    /* device gradients are summed on the device: the group wrapped with NCCL (collective; on
     * failure every rank returns LS_ERR together, past the agreement above) */
    if (group && !be->host_memory) {
        if (ls_nccl_group_init(&nccl, group) != LS_OK) goto done;
        group = &nccl;
    }
#endif
    out->train.wall_seconds_before = out->train.wall_seconds; /* earlier attempts, to their last checkpoint */
    trial_hooks_ctx hctx = {hooks, ckpt, writer, &out->train, t_start, out->train.wall_seconds_before};
    ls_train_hooks th = {trial_progress, trial_checkpoint, trial_should_stop, &hctx};
    out->resumed_step = out->train.step;
    if (cfg->train.max_steps > 0) {
        double t_loop = ls_now();
        int trained = ls_train_run(be, &dev_model, &out->adapter, &train_w, &val_w, &opt, &out->train, &th, group);
        out->train_run_seconds = ls_now() - t_loop;
        if (trained != LS_OK) goto done;
        int n = out->train.step < 10 ? out->train.step : 10;
        double sum = 0;
        for (int i = out->train.step - n; i < out->train.step; i++) sum += out->train.train_loss[i];
        out->final_train_loss = n ? sum / n : NAN;
    }
    /* The trained adapter, for the final evaluation and the forecast. */
    if (ls_lora_to_backend(be, &out->adapter, &dev_adapter) != LS_OK) goto done;
    if (out->train.n_evals > 0 && out->train.eval_step[out->train.n_evals - 1] == out->train.step)
        out->final_val_loss = out->train.val_loss[out->train.n_evals - 1];
    else if (val_w.n_windows > 0 && out->train.step == cfg->train.max_steps)
        out->final_val_loss =
            ls_train_evaluate_group(be, &dev_model, &dev_adapter, &val_w, cfg->train.batch_size,
                                    cfg->train.val_max_windows, pad_id, group);
    if (be->check() != LS_OK) goto done;

    ls_flops_lora fl = flops_lora_of(&out->adapter);
    double step_flops = 0, window_flops = 0, loss_flops = 0;
    ls_flops_breakdown fwd;
    if (ls_flops_train_step(&model.cfg, cfg->train.ctx, cfg->train.batch_size, &fl, &step_flops) != LS_OK ||
        ls_flops_forward(&model.cfg, cfg->train.ctx, &fl, &fwd) != LS_OK || ls_flops_loss(&model.cfg, cfg->train.ctx, &loss_flops) != LS_OK)
        goto done;
    window_flops = fwd.total + loss_flops;
    int val_windows = cfg->train.val_max_windows > 0 && cfg->train.val_max_windows < val_w.n_windows
                          ? cfg->train.val_max_windows : val_w.n_windows;
    out->flops_train = step_flops * out->train.step;
    out->flops_validation = window_flops * val_windows * (out->train.n_evals + (out->train.n_evals == 0 && !isnan(out->final_val_loss)));

    /* The forecast, once training is complete; in a group, rank 0 alone forecasts (the adapter is
     * the same everywhere, and the forecast is not data parallel). */
    if (writer && cfg->eval.systems > 0 && out->train.step == cfg->train.max_steps) {
        ls_forecast_options fo = {
            .context_steps = cfg->eval.context_steps,
            .forecast_steps = cfg->eval.forecast_steps,
            .samples = cfg->eval.samples,
            .max_new_tokens = cfg->eval.max_new_tokens,
            .sampler = {cfg->eval.greedy, (float)cfg->eval.temperature, (float)cfg->eval.top_p, cfg->eval.top_k},
            .grammar = cfg->eval.grammar,
            .seed = cfg->eval.seed,
        };
        if (ls_forecast_run(be, &dev_model, &dev_adapter, tok, &ds, split.test, cfg->eval.systems, &enc, out->alpha, &fo,
                            hooks ? hooks->forecast_progress : NULL, hooks ? hooks->forecast_ctx : NULL,
                            &out->forecast) != LS_OK)
            goto done;
        out->has_forecast = 1;
        /* What generation cost: per system, the mean prompt and mean new tokens per sample. */
        ls_flops_gen g;
        int K = cfg->eval.samples, S = cfg->eval.systems;
        int prompt = (int)(out->forecast.prompt_tokens / S), fresh = (int)(out->forecast.generated_tokens / ((long)S * K));
        if (fresh > 0 && ls_flops_generate(&model.cfg, &fl, prompt, fresh, K, &g) == LS_OK) out->flops_forecast = g.total * S;
    }
    out->flops_total = out->flops_train + out->flops_validation + out->flops_forecast;
    rc = LS_OK;
done:
    if (!agreed) ls_train_group_agree(group, 0); /* the ranks waiting to train learn of the failure */
#ifdef LS_HAVE_NCCL
    ls_nccl_group_free(&nccl);
#endif
    out->wall_seconds = out->train.wall_seconds_before + (ls_now() - t_start); /* all attempts */
    ls_lora_backend_free(be, &dev_adapter);
    if (cache && cache->dir && rc != LS_OK && be->check() != LS_OK)
        ls_model_cache_free(cache); /* a failed device may have lost what it held */
    if (!cache) {
        ls_model_backend_free(be, &dev_model);
        ls_model_free(&model);
    }
    ls_window_set_free(&train_w);
    ls_window_set_free(&val_w);
    ls_split_free(&split);
    ls_dataset_free(&ds);
    ls_tokenizer_free(tok);
    return rc;
}

void ls_trial_result_free(ls_trial_result *r) {
    ls_train_state_free(&r->train);
    ls_forecast_free(&r->forecast);
    if (r->adapter.arena) ls_lora_free(&r->adapter);
    memset(r, 0, sizeof *r);
}

int ls_trial_estimate_flops(const ls_trial_config *cfg, double *flops) {
    return ls_trial_estimate_flops_rungs(cfg, NULL, 0, cfg->train.max_steps, flops);
}

int ls_trial_estimate_flops_rungs(const ls_trial_config *cfg, const int *rungs, int n_rungs, int steps, double *flops) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", cfg->resolved.model_path);
    ls_model_config mc;
    if (ls_model_config_load(path, &mc) != LS_OK) return LS_ERR;
    /* a data file that cannot be read: the course's shape stands in (the trial itself will fail) */
    ls_dataset ds;
    int have_data = ls_dataset_read(cfg->resolved.data_path, &ds) == LS_OK;
    ls_trial_flops f;
    int rc = ls_trial_estimate_flops_model_rungs(cfg, &mc, have_data ? &ds : NULL, rungs, n_rungs, steps, &f);
    if (have_data) ls_dataset_free(&ds);
    if (rc == LS_OK) *flops = f.total;
    return rc;
}

/* What the FLOPS of a trial depend on in its data. */
typedef struct {
    double val_windows;   /* the validation systems' windows at the trial's ctx and stride */
    int prompt_tokens;    /* per forecast system: the mean, rounded down as the trial records it */
} data_costs;

/* Tokens of LLMTIME text: one per character. Qwen's tokenizer writes every digit and each of '.',
 * ',' and ';' as a token of its own (its pre-tokenizer splits digits one by one, and the
 * punctuation between them never forms a longer run), so the count is exact for the text the
 * trial tokenizes. */
static int text_tokens(const ls_encoding *enc, const ls_dataset *ds, int system, int steps, double alpha,
                       size_t *tokens) {
    ls_llmtime code = {ls_encoding_alpha(enc, ds, system, steps, alpha), enc->decimals};
    char *text = ls_llmtime_encode(&code, ds->traj + (size_t)system * ds->steps * LS_LV_VARS, steps, LS_LV_VARS,
                                   tokens);
    if (!text) return LS_ERR;
    free(text);
    return LS_OK;
}

/* The trial's split of ds, its scale and text: the validation windows and the forecast prompts,
 * counted as ls_trial_run will make them. LS_ERR with the trial's own message where it would fail. */
static int data_costs_of(const ls_trial_config *cfg, const ls_dataset *ds, data_costs *out) {
    memset(out, 0, sizeof *out);
    ls_split split;
    if (ls_split_make(ds->systems, cfg->split.test_systems, cfg->split.val_fraction, cfg->split.seed, &split) != LS_OK)
        return ls_error_prefix("%s: split", cfg->resolved.data_path);
    int rc = LS_OK, S = cfg->eval.systems, C = cfg->eval.context_steps, H = cfg->eval.forecast_steps;
    if (S > split.n_test) rc = ls_error("eval.systems: %d, but the test split has %d systems", S, split.n_test);
    else if (S > 0 && C + H > ds->steps)
        rc = ls_error("forecasting %d steps from %d needs %d steps, the data has %d", H, C, C + H, ds->steps);
    ls_encoding enc = ls_trial_encoding(cfg);
    double alpha = rc == LS_OK ? ls_encoding_dataset_alpha(&enc, ds, split.train, split.n_train) : 0;
    for (int i = 0; rc == LS_OK && i < split.n_val; i++) {
        size_t tokens;
        ls_windows w;
        if ((rc = text_tokens(&enc, ds, split.val[i], ds->steps, alpha, &tokens)) != LS_OK) break;
        if ((rc = ls_windows_make((int)tokens, cfg->train.ctx, ls_config_stride(cfg), &w)) != LS_OK) break;
        for (int k = 0; k < w.count; k++) out->val_windows += w.valid[k] >= 2; /* as ls_windows_build keeps them */
        ls_windows_free(&w);
    }
    long prompt = 0;
    for (int i = 0; rc == LS_OK && i < S; i++) {
        size_t tokens;
        if ((rc = text_tokens(&enc, ds, split.test[i], C, alpha, &tokens)) == LS_OK) prompt += (long)tokens;
    }
    out->prompt_tokens = S > 0 ? (int)(prompt / S) : 0;
    ls_split_free(&split);
    return rc;
}

/* The course's shape, for a plan whose data set is not there yet: 1000 systems of 100 steps,
 * every value one integer digit. */
static void nominal_data_costs(const ls_trial_config *cfg, data_costs *out) {
    int per_step = 2 * (3 + cfg->encoding.decimals);
    double systems = 1000;
    double n_val = lround((systems - cfg->split.test_systems) * cfg->split.val_fraction);
    double windows_per_system = ceil(fmax(1.0, (100.0 * per_step - cfg->train.ctx) / ls_config_stride(cfg) + 1));
    out->val_windows = n_val * windows_per_system;
    out->prompt_tokens = cfg->eval.context_steps * per_step;
}

/* Validation passes of a run of `steps` steps (max_steps 0: the one pass of an evaluation): the
 * untrained adapter at step 0, every eval_every steps, the last step, and each rung below it
 * (early stopping validates there whatever eval_every says), each step once. */
static int validation_passes(int steps, int eval_every, const int *rungs, int n_rungs) {
    if (steps == 0) return 1;
    int evals = 1 + (eval_every > 0 ? steps / eval_every + (steps % eval_every != 0) : 1);
    for (int k = 0; k < n_rungs; k++)
        if (rungs[k] > 0 && rungs[k] < steps && (eval_every <= 0 || rungs[k] % eval_every != 0)) evals++;
    return evals;
}

int ls_trial_estimate_flops_model(const ls_trial_config *cfg, const ls_model_config *model, const ls_dataset *ds,
                                  ls_trial_flops *out) {
    return ls_trial_estimate_flops_model_rungs(cfg, model, ds, NULL, 0, cfg->train.max_steps, out);
}

int ls_trial_estimate_flops_model_rungs(const ls_trial_config *cfg, const ls_model_config *model, const ls_dataset *ds,
                                        const int *rungs, int n_rungs, int steps, ls_trial_flops *out) {
    if (steps < 0 || steps > cfg->train.max_steps) steps = cfg->train.max_steps;
    const ls_model_config *mc = model;
    ls_flops_lora fl = {cfg->lora.rank, cfg->lora.targets, cfg->lora.head_bias};
    double train = 0, loss = 0;
    ls_flops_breakdown fwd;
    if (ls_flops_train_total(mc, cfg->train.ctx, cfg->train.batch_size, steps, &fl, &train) != LS_OK ||
        ls_flops_forward(mc, cfg->train.ctx, &fl, &fwd) != LS_OK || ls_flops_loss(mc, cfg->train.ctx, &loss) != LS_OK)
        return LS_ERR;
    memset(out, 0, sizeof *out);
    data_costs dc;
    if (ds) {
        if (data_costs_of(cfg, ds, &dc) != LS_OK) return LS_ERR;
    } else {
        nominal_data_costs(cfg, &dc);
    }
    double val_windows = dc.val_windows;
    if (cfg->train.val_max_windows > 0 && cfg->train.val_max_windows < val_windows) val_windows = cfg->train.val_max_windows;
    /* Validation passes as the trainer runs them (validation_passes). */
    int evals = validation_passes(steps, cfg->train.eval_every, rungs, n_rungs);
    if (val_windows < 1) evals = 0; /* no validation split, no passes */
    double validation = evals * val_windows * (fwd.total + loss), forecast = 0;
    if (cfg->eval.systems > 0 && steps == cfg->train.max_steps) { /* a trial stopped early is not forecast */
        /* Generation at the most a sample can write (an upper bound: the budget is never overrun
         * by an undercount): under the grammar, every number at its longest until the last ';';
         * without it, max_new_tokens. The prompt is exact. */
        int H = cfg->eval.forecast_steps, d = cfg->encoding.decimals;
        int max_new = cfg->eval.max_new_tokens > 0 ? cfg->eval.max_new_tokens : ls_forecast_token_budget(H, d);
        int fresh = cfg->eval.grammar && ls_forecast_grammar_tokens(H, d) < max_new ? ls_forecast_grammar_tokens(H, d)
                                                                                   : max_new;
        ls_flops_gen g;
        if (ls_flops_generate(mc, &fl, dc.prompt_tokens, fresh, cfg->eval.samples, &g) != LS_OK) return LS_ERR;
        forecast = g.total * cfg->eval.systems;
        out->prompt_tokens = dc.prompt_tokens, out->new_tokens_max = fresh;
    }
    out->train = train, out->validation = validation, out->forecast = forecast;
    out->total = train + validation + forecast;
    return LS_OK;
}

/* ---- many estimates ------------------------------------------------------------------------- */

/* The data set of c, or NULL (the course's shape stands in) when it cannot be read. */
static const ls_dataset *estimator_data(ls_flops_estimator *e, const ls_trial_config *c) {
    if (!e->data_path || strcmp(e->data_path, c->resolved.data_path)) {
        free(e->data_path);
        ls_dataset_free(&e->ds);
        e->data_path = ls_strdup(c->resolved.data_path);
        e->data_ok = ls_dataset_read(e->data_path, &e->ds) == LS_OK;
        if (!e->data_ok && !e->data_note[0]) snprintf(e->data_note, sizeof e->data_note, "%s", ls_last_error());
    }
    return e->data_ok ? &e->ds : NULL;
}

double ls_flops_estimate(ls_flops_estimator *e, const ls_trial_config *c, const int *rungs, int n_rungs, int steps,
                         ls_trial_flops *parts) {
    const ls_model_config *mc = NULL;
    if (e->have_preset) mc = &e->preset;
    else {
        size_t cap = strlen(c->resolved.model_path) + 16;
        char *path = ls_malloc(cap);
        snprintf(path, cap, "%s/config.json", c->resolved.model_path);
        if (!e->path || strcmp(e->path, path)) {
            free(e->path);
            e->path = path;
            e->ok = ls_model_config_load(path, &e->mc) == LS_OK;
            if (!e->ok && !e->error[0]) snprintf(e->error, sizeof e->error, "%s", ls_last_error());
        } else free(path);
        if (e->ok) mc = &e->mc;
    }
    ls_trial_flops f = {NAN, NAN, NAN, NAN, 0, 0};
    if (mc && ls_trial_estimate_flops_model_rungs(c, mc, estimator_data(e, c), rungs, n_rungs, steps, &f) != LS_OK) {
        if (!e->error[0]) snprintf(e->error, sizeof e->error, "%s", ls_last_error());
        f = (ls_trial_flops){NAN, NAN, NAN, NAN, 0, 0};
    }
    if (parts) *parts = f;
    return f.total;
}

void ls_flops_estimator_free(ls_flops_estimator *e) {
    free(e->path);
    free(e->data_path);
    ls_dataset_free(&e->ds);
    memset(e, 0, sizeof *e);
}
