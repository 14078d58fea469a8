/*
 * train.c: token windows, optimisers and schedules, the training loop, checkpoints.
 *
 * The loop per step: take batch_size windows in the epoch's order (wrapping into the next epoch,
 * so every batch is full), forward with the fused head loss, backward to the adapter, clip the
 * global gradient norm, step the optimiser at the scheduled learning rate. The loss is the mean
 * over the batch's target tokens; padding is never a target.
 *
 * Data parallel (a group, train.h): the batch above is the global batch; each rank runs forward
 * and backward on its contiguous share, the loss sums and gradients are summed over the group
 * before the norm, and everything after (clipping, the step, the curves) is the same on every
 * rank. Validation windows are shared the same way and their sums reduced.
 */
#include "lorasweep/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"
#include "lorasweep/data.h"
#include "lorasweep/qwen2.h"
#include "lorasweep/safetensors.h"

/* ---- encoding and windows ----------------------------------------------------------------- */

double ls_encoding_dataset_alpha(const ls_encoding *enc, const ls_dataset *ds, const int *systems, int n) {
    if (enc->alpha > 0) return enc->alpha;
    size_t per = (size_t)ds->steps * LS_LV_VARS, count = 0;
    float *values = ls_malloc(sizeof(float) * per * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++, count += per) memcpy(values + count, ds->traj + (size_t)systems[i] * per, sizeof(float) * per);
    double alpha = ls_llmtime_auto_alpha(values, count, enc->auto_percentile, enc->auto_target);
    free(values);
    return alpha;
}

double ls_encoding_alpha(const ls_encoding *enc, const ls_dataset *ds, int system, int steps, double dataset_alpha) {
    if (enc->alpha > 0) return enc->alpha;
    if (!enc->per_system) return dataset_alpha;
    return ls_llmtime_auto_alpha(ds->traj + (size_t)system * ds->steps * LS_LV_VARS, (size_t)steps * LS_LV_VARS,
                                 enc->auto_percentile, enc->auto_target);
}

int ls_windows_build(ls_window_set *out, const ls_dataset *ds, const int *systems, int n_systems,
                     const ls_encoding *enc, double dataset_alpha, const ls_tokenizer *tok, int ctx, int stride) {
    memset(out, 0, sizeof *out);
    out->ctx = ctx;
    int64_t cap_tokens = 0, cap_windows = 0;
    ls_tokens ids = {0};
    for (int i = 0; i < n_systems; i++) {
        int s = systems[i];
        ls_llmtime code = {ls_encoding_alpha(enc, ds, s, ds->steps, dataset_alpha), enc->decimals};
        size_t len;
        char *text = ls_llmtime_encode(&code, ds->traj + (size_t)s * ds->steps * LS_LV_VARS, ds->steps, LS_LV_VARS, &len);
        if (!text) goto fail;
        ids.n = 0;
        int rc = ls_tokenizer_encode(tok, text, len, &ids);
        free(text);
        if (rc != LS_OK) goto fail;
        ls_windows w;
        if (ls_windows_make((int)ids.n, ctx, stride, &w) != LS_OK) goto fail;
        if (out->n_tokens + (int64_t)ids.n > cap_tokens) {
            cap_tokens = 2 * (out->n_tokens + (int64_t)ids.n);
            out->tokens = ls_realloc(out->tokens, sizeof(int32_t) * (size_t)cap_tokens);
        }
        if (out->n_windows + w.count > cap_windows) {
            cap_windows = 2 * (out->n_windows + w.count) + 16;
            out->start = ls_realloc(out->start, sizeof(int64_t) * (size_t)cap_windows);
            out->valid = ls_realloc(out->valid, sizeof(int) * (size_t)cap_windows);
        }
        for (int k = 0; k < w.count; k++) {
            if (w.valid[k] < 2) continue; /* a window needs one next-token target */
            out->start[out->n_windows] = out->n_tokens + w.start[k];
            out->valid[out->n_windows++] = w.valid[k];
        }
        memcpy(out->tokens + out->n_tokens, ids.ids, sizeof(int32_t) * ids.n);
        out->n_tokens += (int64_t)ids.n;
        ls_windows_free(&w);
    }
    ls_tokens_free(&ids);
    return LS_OK;
fail:
    ls_tokens_free(&ids);
    ls_window_set_free(out);
    return LS_ERR;
}

void ls_window_set_free(ls_window_set *w) {
    free(w->tokens);
    free(w->start);
    free(w->valid);
    memset(w, 0, sizeof *w);
}

/* Fill ids/targets (B * ctx) from windows order[0..B); returns the number of targets. */
static long fill_batch(const ls_window_set *w, const int *order, int B, int32_t pad_id, int32_t *ids,
                       int32_t *targets) {
    long n_targets = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *tok = w->tokens + w->start[order[b]];
        int valid = w->valid[order[b]];
        for (int t = 0; t < w->ctx; t++) {
            ids[(size_t)b * w->ctx + t] = t < valid ? tok[t] : pad_id;
            targets[(size_t)b * w->ctx + t] = t + 1 < valid ? tok[t + 1] : -1;
        }
        n_targets += valid - 1;
    }
    return n_targets;
}

/* ---- schedule ----------------------------------------------------------------------------- */

float ls_train_lr(const ls_train_options *o, int step) {
    if (o->warmup_steps > 0 && step <= o->warmup_steps) return o->lr * (float)step / (float)o->warmup_steps;
    /* after warmup: constant, or decaying to lr * min_lr_ratio at max_steps */
    int span = o->max_steps - o->warmup_steps;
    double progress = span > 0 ? (double)(step - o->warmup_steps) / span : 1.0;
    if (progress > 1) progress = 1;
    double lo = o->lr * o->min_lr_ratio;
    switch (o->schedule) {
    case LS_SCHEDULE_LINEAR: return (float)(o->lr - (o->lr - lo) * progress);
    case LS_SCHEDULE_COSINE: return (float)(lo + (o->lr - lo) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress)));
    default: return o->lr;
    }
}

/* ---- state -------------------------------------------------------------------------------- */

void ls_train_state_init(ls_train_state *st, const ls_lora *lora, const ls_model_config *cfg, int max_steps) {
    memset(st, 0, sizeof *st);
    ls_lora_like(&st->grads, lora, cfg);
    ls_lora_like(&st->m, lora, cfg);
    ls_lora_like(&st->v, lora, cfg);
    st->capacity = max_steps;
    st->train_loss = ls_calloc((size_t)(max_steps > 0 ? max_steps : 1), sizeof(float));
    st->eval_step = ls_calloc((size_t)max_steps + 2, sizeof(int));
    st->val_loss = ls_calloc((size_t)max_steps + 2, sizeof(float));
}

void ls_train_state_free(ls_train_state *st) {
    if (st->grads.arena) ls_lora_free(&st->grads);
    if (st->m.arena) ls_lora_free(&st->m);
    if (st->v.arena) ls_lora_free(&st->v);
    free(st->train_loss);
    free(st->eval_step);
    free(st->val_loss);
    memset(st, 0, sizeof *st);
}

/* The order of epoch e: a Fisher-Yates shuffle seeded by (seed, e). */
static void epoch_order(int *order, int n, uint64_t seed, int epoch) {
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch * 0xD1B54A32D192ED03ull + 1;
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(ls_rng_next(&rng) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* ---- data parallel ------------------------------------------------------------------------ */

int ls_train_group_agree(const ls_train_group *g, int ok) {
    if (!g) return ok;
    double bad = ok ? 0 : 1;
    if (g->sum_doubles(g->ctx, &bad, 1) != LS_OK) return 0;
    return bad == 0;
}

/* The contiguous share [*lo, *hi) of n items that group rank r of k takes: sizes differ by at
 * most one, and the shares are in rank order, so together they are the items in order. */
static void share_of(int n, const ls_train_group *g, int *lo, int *hi) {
    int r = g ? g->rank : 0, k = g ? g->size : 1;
    *lo = (int)((long)n * r / k);
    *hi = (int)((long)n * (r + 1) / k);
}

static long count_targets(const ls_window_set *w, const int *order, int B) {
    long n = 0;
    for (int b = 0; b < B; b++) n += w->valid[order[b]] - 1;
    return n;
}

/* ---- evaluation --------------------------------------------------------------------------- */

/* sums[0] += loss, sums[1] += targets of windows [lo, hi), batch_size at a time; the loss is NaN
 * when the activations cannot be allocated (so a group's sum shows it on every rank). `reuse`
 * (may be NULL): activations planned for at least this batch of these windows with this adapter,
 * the training loop's, which a forward pass without backward may overwrite between steps; without
 * them a block is allocated for the evaluation. */
static void evaluate_range(const ls_backend *be, const ls_model *m, const ls_lora *lora, const ls_window_set *w,
                           int lo, int hi, int batch_size, int32_t pad_id, ls_activations *reuse, double sums[2]) {
    if (hi <= lo) return;
    int B = batch_size < hi - lo ? batch_size : hi - lo;
    ls_activations own, *a = reuse;
    if (!a || a->B < B || a->T != w->ctx) {
        a = &own;
        if (ls_activations_init(a, be, &m->cfg, lora, B, w->ctx) != LS_OK) {
            sums[0] = NAN;
            return;
        }
    }
    int32_t *ids = ls_malloc(sizeof(int32_t) * (size_t)B * w->ctx), *targets = ls_malloc(sizeof(int32_t) * (size_t)B * w->ctx);
    int *order = ls_malloc(sizeof(int) * (size_t)B);
    for (int w0 = lo; w0 < hi; w0 += B) {
        int b_now = hi - w0 < B ? hi - w0 : B;
        for (int b = 0; b < b_now; b++) order[b] = w0 + b;
        sums[1] += (double)fill_batch(w, order, b_now, pad_id, ids, targets);
        sums[0] += ls_qwen2_forward(be, m, lora, a, ids, targets, b_now, w->ctx, NULL, 1.0f);
        /* A device failure gives NaN here (a failed backend's ops do nothing and its loss is NaN)
         * and is left for the caller's be->check() to report: checking here would clear a
         * recoverable failure, and the caller's check would then find nothing wrong. */
        if (isnan(sums[0])) break;
    }
    free(ids);
    free(targets);
    free(order);
    if (a == &own) ls_activations_free(a, be);
}

static double evaluate_group(const ls_backend *be, const ls_model *m, const ls_lora *lora, const ls_window_set *w,
                             int batch_size, int max_windows, int32_t pad_id, const ls_train_group *group,
                             ls_activations *reuse) {
    int n = max_windows > 0 && max_windows < w->n_windows ? max_windows : w->n_windows;
    if (n == 0) return NAN;
    int lo, hi;
    share_of(n, group, &lo, &hi);
    double sums[2] = {0, 0};
    evaluate_range(be, m, lora, w, lo, hi, batch_size, pad_id, reuse, sums);
    if (group && group->sum_doubles(group->ctx, sums, 2) != LS_OK) return NAN;
    return sums[1] > 0 ? sums[0] / sums[1] : NAN;
}

double ls_train_evaluate_group(const ls_backend *be, const ls_model *m, const ls_lora *lora, const ls_window_set *w,
                               int batch_size, int max_windows, int32_t pad_id, const ls_train_group *group) {
    return evaluate_group(be, m, lora, w, batch_size, max_windows, pad_id, group, NULL);
}

double ls_train_evaluate(const ls_backend *be, const ls_model *m, const ls_lora *lora, const ls_window_set *w,
                         int batch_size, int max_windows, int32_t pad_id) {
    return ls_train_evaluate_group(be, m, lora, w, batch_size, max_windows, pad_id, NULL);
}

/* ---- the optimiser step ------------------------------------------------------------------- */

int ls_train_optimizer_step(const ls_backend *be, const ls_train_options *o, float *params, float *grads, float *m,
                            float *v, size_t n, float lr, int step, float *norm_out) {
    float norm = (float)sqrt(be->sum_squares(grads, n));
    *norm_out = norm;
    if (be->check() != LS_OK) return LS_ERR;
    if (!isfinite(norm)) return ls_error("step %d: the gradient is not finite (try a lower learning rate)", step);
    /* torch.nn.utils.clip_grad_norm_: the 1e-6 keeps a tiny norm from dividing by zero */
    if (o->grad_clip > 0 && norm > o->grad_clip) be->scale(grads, o->grad_clip / (norm + 1e-6f), n);
    if (o->optimizer == LS_OPTIMIZER_ADAMW)
        be->adamw(params, grads, m, v, n, lr, o->beta1, o->beta2, o->eps, o->weight_decay, step);
    else
        be->sgd(params, grads, m, n, lr, o->momentum, o->weight_decay, step);
    return be->check();
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* The adapter and the optimiser's tensors where the backend computes: aliases of the host ones
 * on the CPU, copies on a device (backend.h's host_memory). The host side stays the record that
 * checkpoints and the caller read; sync_to_host brings it up to date. */
typedef struct {
    ls_lora lora, grads, m, v;
} train_tensors;

static void train_tensors_free(const ls_backend *be, train_tensors *t) {
    ls_lora_backend_free(be, &t->lora);
    ls_lora_backend_free(be, &t->grads);
    ls_lora_backend_free(be, &t->m);
    ls_lora_backend_free(be, &t->v);
}

static int train_tensors_init(const ls_backend *be, train_tensors *t, const ls_lora *lora, const ls_train_state *st) {
    memset(t, 0, sizeof *t);
    if (ls_lora_to_backend(be, lora, &t->lora) != LS_OK || ls_lora_to_backend(be, &st->grads, &t->grads) != LS_OK ||
        ls_lora_to_backend(be, &st->m, &t->m) != LS_OK || ls_lora_to_backend(be, &st->v, &t->v) != LS_OK) {
        train_tensors_free(be, t);
        return LS_ERR;
    }
    return LS_OK;
}

static void sync_to_host(const ls_backend *be, const train_tensors *t, ls_lora *lora, ls_train_state *st) {
    ls_lora_to_host(be, &t->lora, lora);
    ls_lora_to_host(be, &t->m, &st->m);
    ls_lora_to_host(be, &t->v, &st->v);
}

/* A checkpoint written (by whichever ranks the hook lets write) and agreed on by the group. */
static int checkpoint_agreed(const ls_train_hooks *hooks, const ls_train_state *st, const ls_lora *lora,
                             const ls_train_group *group) {
    int rc = hooks->on_checkpoint(hooks->ctx, st, lora);
    if (ls_train_group_agree(group, rc == LS_OK)) return LS_OK;
    return rc != LS_OK ? rc : ls_error("step %d: the checkpoint failed on another rank of the group", st->step);
}

int ls_train_run(const ls_backend *be, const ls_model *m, ls_lora *host_lora, const ls_window_set *train,
                 const ls_window_set *val, const ls_train_options *o, ls_train_state *st, const ls_train_hooks *hooks,
                 const ls_train_group *group) {
    if (train->n_windows == 0) return ls_error("the training split has no windows");
    /* a state from a checkpoint: its position must be inside these windows (order[cursor]) */
    if (st->step < 0 || st->step > st->capacity || st->step > o->max_steps || st->epoch < 0 || st->cursor < 0 ||
        st->cursor > train->n_windows)
        return ls_error("the training state (step %d, epoch %d, window %d) does not fit this run (%d steps, %d "
                        "training windows): it was made with other data or settings", st->step, st->epoch, st->cursor,
                        o->max_steps, train->n_windows);
    if (group && group->size > o->batch_size)
        return ls_error("train.batch_size: %d windows cannot be shared by %d ranks", o->batch_size, group->size);
    /* This rank's share [lo, hi) of every global batch of B windows. */
    int B = o->batch_size, ctx = train->ctx, rc = LS_OK, lo, hi;
    share_of(B, group, &lo, &hi);
    int b_local = hi - lo;
    train_tensors dev;
    int ok = train_tensors_init(be, &dev, host_lora, st) == LS_OK;
    if (!ls_train_group_agree(group, ok)) {
        if (ok) train_tensors_free(be, &dev);
        return ok ? ls_error("another rank of the group could not set up its adapter") : LS_ERR;
    }
    ls_lora *lora = &dev.lora, *grads = &dev.grads;
    ls_activations a;
    ok = ls_activations_init(&a, be, &m->cfg, lora, b_local, ctx) == LS_OK;
    if (!ls_train_group_agree(group, ok)) {
        if (ok) ls_activations_free(&a, be);
        train_tensors_free(be, &dev);
        return ok ? ls_error("another rank of the group could not allocate its activations") : LS_ERR;
    }
    int32_t *ids = ls_malloc(sizeof(int32_t) * (size_t)b_local * ctx),
            *targets = ls_malloc(sizeof(int32_t) * (size_t)b_local * ctx);
    int *order = ls_malloc(sizeof(int) * (size_t)train->n_windows), *batch = ls_malloc(sizeof(int) * (size_t)B);
    epoch_order(order, train->n_windows, o->seed, st->epoch);
    double run_start = ls_now(), run_tokens = 0;
    int first_step = st->step;
    /* The untrained adapter's validation loss starts the curve: the baseline every run improves on. */
    if (st->step == 0 && st->n_evals == 0 && val && val->n_windows > 0) {
        st->eval_step[0] = 0;
        st->val_loss[0] = (float)evaluate_group(be, m, lora, val, b_local, o->val_max_windows, o->pad_id, group, &a);
        st->n_evals = 1;
        rc = be->check();
    }

    int pause = o->pause_step > 0 && o->pause_step < o->max_steps ? o->pause_step : o->max_steps;
    while (rc == LS_OK && st->step < o->max_steps && st->step < pause) {
        /* A stop asked on any rank stops the group: every rank must leave at the same step. */
        int stop = hooks && hooks->should_stop && hooks->should_stop(hooks->ctx);
        if (!ls_train_group_agree(group, !stop)) break;
        double t0 = ls_now();
        for (int b = 0; b < B; b++) { /* the global batch: the same on every rank */
            if (st->cursor == train->n_windows) {
                st->epoch++;
                st->cursor = 0;
                epoch_order(order, train->n_windows, o->seed, st->epoch);
            }
            batch[b] = order[st->cursor++];
        }
        /* Every rank scales by the global batch's target count, so the group's summed gradient is
         * the gradient of the global mean loss however the tokens fall to the shares. */
        long n_targets = count_targets(train, batch, B);
        fill_batch(train, batch + lo, b_local, o->pad_id, ids, targets);
        be->zero(grads->arena, sizeof(float) * grads->arena_floats);
        double loss = ls_qwen2_forward(be, m, lora, &a, ids, targets, b_local, ctx, grads, 1.0f / (float)n_targets);
        if ((rc = be->check()) != LS_OK) break; /* a device failure, reported as such rather than as NaN */
        if (group && group->sum_doubles(group->ctx, &loss, 1) != LS_OK) loss = NAN;
        if (!isfinite(loss)) { /* the group's sum: every rank stops here together */
            rc = ls_error("step %d: the training loss is %s (try a lower learning rate)", st->step + 1,
                          isnan(loss) ? "NaN" : "infinite");
            break;
        }
        ls_qwen2_backward(be, m, lora, &a, grads, b_local, ctx);
        /* The reduction comes before the norm, so clipping and the step see the global gradient. */
        if (group && group->sum_floats(group->ctx, grads->arena, grads->arena_floats) != LS_OK) {
            rc = ls_error_prefix("step %d: the group's gradient reduction failed", st->step + 1); /* keeps the cause */
            break;
        }
        float lr = ls_train_lr(o, st->step + 1), norm;
        if ((rc = ls_train_optimizer_step(be, o, lora->arena, grads->arena, dev.m.arena, dev.v.arena,
                                          lora->arena_floats, lr, st->step + 1, &norm)) != LS_OK)
            break;
        st->train_loss[st->step] = (float)(loss / (double)n_targets);
        st->step++;
        st->train_tokens += (double)n_targets;
        run_tokens += (double)n_targets;
        st->train_seconds += ls_now() - t0;

        ls_train_progress p = {st->step, o->max_steps, st->train_loss[st->step - 1], NAN, lr, norm, 0, 0};
        if ((o->eval_every > 0 && st->step % o->eval_every == 0) || st->step == o->max_steps || st->step == pause) {
            if (val && val->n_windows > 0) {
                p.val_loss = (float)evaluate_group(be, m, lora, val, b_local, o->val_max_windows, o->pad_id, group, &a);
                st->eval_step[st->n_evals] = st->step;
                st->val_loss[st->n_evals++] = p.val_loss;
                if ((rc = be->check()) != LS_OK) break;
            }
        }
        double elapsed = ls_now() - run_start;
        p.tokens_per_s = run_tokens / elapsed;
        p.eta_s = elapsed / (st->step - first_step) * (o->max_steps - st->step);
        if (hooks && hooks->on_progress) hooks->on_progress(hooks->ctx, &p);
        if (hooks && hooks->on_checkpoint && o->checkpoint_every > 0 && st->step % o->checkpoint_every == 0 &&
            st->step < pause) { /* the pause (or the end) checkpoints below */
            sync_to_host(be, &dev, host_lora, st);
            if ((rc = checkpoint_agreed(hooks, st, host_lora, group)) != LS_OK) break;
        }
    }
    /* The caller's adapter and state hold the trained values; after a failure they keep the last
     * ones that reached the host (a failed device holds nothing trustworthy). */
    if (rc == LS_OK) sync_to_host(be, &dev, host_lora, st);
    /* A final (or interrupted) run always leaves a checkpoint to continue from. */
    if (rc == LS_OK && hooks && hooks->on_checkpoint) rc = checkpoint_agreed(hooks, st, host_lora, group);
    free(ids);
    free(targets);
    free(order);
    free(batch);
    ls_activations_free(&a, be);
    train_tensors_free(be, &dev);
    return rc;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

int ls_train_checkpoint_save(const char *dir, const ls_train_state *st, const ls_lora *lora,
                             const ls_model_config *cfg) {
    (void)cfg;
    char path[4096], step[32], epoch[32], cursor[32], tokens[40], seconds[40], n_evals[32], wall[40];
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    snprintf(step, sizeof step, "%d", st->step);
    snprintf(epoch, sizeof epoch, "%d", st->epoch);
    snprintf(cursor, sizeof cursor, "%d", st->cursor);
    snprintf(tokens, sizeof tokens, "%.17g", st->train_tokens);
    snprintf(seconds, sizeof seconds, "%.17g", st->train_seconds);
    snprintf(n_evals, sizeof n_evals, "%d", st->n_evals);
    snprintf(wall, sizeof wall, "%.17g", st->wall_seconds);
    int n_steps = st->step > 0 ? st->step : 1, n_ev = st->n_evals > 0 ? st->n_evals : 1;
    float *eval_step = ls_calloc((size_t)n_ev, sizeof(float));
    for (int i = 0; i < st->n_evals; i++) eval_step[i] = (float)st->eval_step[i]; /* exact below 2^24 */
    ls_st_write t[] = {
        {.name = "lora", .dtype = LS_ST_F32, .rank = 1, .shape = {(int64_t)lora->arena_floats}, .data = lora->arena},
        {.name = "optimizer.m", .dtype = LS_ST_F32, .rank = 1, .shape = {(int64_t)st->m.arena_floats}, .data = st->m.arena},
        {.name = "optimizer.v", .dtype = LS_ST_F32, .rank = 1, .shape = {(int64_t)st->v.arena_floats}, .data = st->v.arena},
        {.name = "train_loss", .dtype = LS_ST_F32, .rank = 1, .shape = {n_steps}, .data = st->train_loss},
        {.name = "eval_step", .dtype = LS_ST_F32, .rank = 1, .shape = {n_ev}, .data = eval_step},
        {.name = "val_loss", .dtype = LS_ST_F32, .rank = 1, .shape = {n_ev}, .data = st->val_loss},
    };
    char checksum[32];
    ls_data_checksum_text(st->data_checksum, checksum, sizeof checksum);
    ls_st_meta meta[] = {{"step", step},       {"epoch", epoch},   {"cursor", cursor},          {"train_tokens", tokens},
                         {"train_seconds", seconds}, {"n_evals", n_evals}, {"wall_seconds", wall},
                         {"data_checksum", checksum}};
    int rc = ls_safetensors_write(path, t, 6, meta, st->data_checksum ? 8 : 7);
    free(eval_step);
    return rc;
}

/* A metadata number of the checkpoint, in [min, max]; whole when `whole`. */
static int meta_number(const ls_safetensors *f, const char *key, double min, double max, int whole, double *out) {
    const char *v = ls_safetensors_meta(f, key);
    if (!v) return ls_error("%s: metadata '%s' is missing (not a checkpoint of this program?)", f->name, key);
    if (ls_parse_double(v, -1e300, 1e300, out) != LS_OK || *out < min || *out > max || (whole && *out != floor(*out)))
        return ls_error("%s: metadata '%s' is '%.40s', not %s in [%.15g, %.15g] (a damaged checkpoint)", f->name, key, v,
                        whole ? "a whole number" : "a number", min, max);
    return LS_OK;
}

static int read_vector(const ls_safetensors *f, const char *name, float *out, size_t n) {
    const ls_st_tensor *t = ls_safetensors_find(f, name);
    if (!t || t->dtype != LS_ST_F32 || t->numel != n)
        return ls_error("%s: tensor '%s' is missing or has the wrong size (the checkpoint is from another trial?)",
                        f->name, name);
    return ls_safetensors_read_f32(f, t, out);
}

int ls_train_checkpoint_load(const char *dir, ls_train_state *st, ls_lora *lora, const ls_model_config *cfg) {
    (void)cfg;
    char path[4096];
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    ls_safetensors f;
    if (ls_safetensors_open(path, &f) != LS_OK) return LS_ERR;
    double step, epoch, cursor, n_evals, tokens, seconds;
    uint64_t checksum = 0;
    const char *sum_text = ls_safetensors_meta(&f, "data_checksum");
    int rc = LS_OK;
    /* every value bounded before it is used: a step beyond the curves, a position beyond an int, a
     * count beyond the validation slots would index past what this run allocated */
    if (meta_number(&f, "step", 0, st->capacity, 1, &step) || meta_number(&f, "epoch", 0, 1e9, 1, &epoch) ||
        meta_number(&f, "cursor", 0, 2e9, 1, &cursor) || meta_number(&f, "n_evals", 0, st->capacity + 2, 1, &n_evals) ||
        meta_number(&f, "train_tokens", 0, 1e300, 0, &tokens) || meta_number(&f, "train_seconds", 0, 1e300, 0, &seconds))
        rc = LS_ERR;
    double wall = 0; /* a checkpoint from before the field: the earlier attempts' time is not known */
    if (rc == LS_OK && ls_safetensors_meta(&f, "wall_seconds") && meta_number(&f, "wall_seconds", 0, 1e300, 0, &wall))
        rc = LS_ERR;
    if (rc == LS_OK && sum_text && ls_data_checksum_parse(sum_text, &checksum) != LS_OK)
        rc = ls_error("%s: metadata 'data_checksum' is '%.40s', not fnv1a64:<16 hex digits> (a damaged checkpoint)",
                      path, sum_text);
    const ls_st_tensor *losses = ls_safetensors_find(&f, "train_loss");
    if (rc == LS_OK && (!losses || losses->dtype != LS_ST_F32 || (double)losses->numel < step))
        rc = ls_error("%s: the loss curve is shorter than the step count", path);
    int ne = rc == LS_OK && (int)n_evals > 0 ? (int)n_evals : 1;
    float *eval_step = ls_calloc((size_t)ne, sizeof(float));
    if (rc == LS_OK) rc = read_vector(&f, "lora", lora->arena, lora->arena_floats);
    if (rc == LS_OK) rc = read_vector(&f, "optimizer.m", st->m.arena, st->m.arena_floats);
    if (rc == LS_OK) rc = read_vector(&f, "optimizer.v", st->v.arena, st->v.arena_floats);
    if (rc == LS_OK && step > 0) {
        float *tl = ls_malloc(sizeof(float) * losses->numel); /* numel: inside the mapped file */
        rc = ls_safetensors_read_f32(&f, losses, tl);
        if (rc == LS_OK) memcpy(st->train_loss, tl, sizeof(float) * (size_t)step);
        free(tl);
    }
    if (rc == LS_OK && n_evals > 0) rc = read_vector(&f, "eval_step", eval_step, (size_t)ne);
    if (rc == LS_OK && n_evals > 0) rc = read_vector(&f, "val_loss", st->val_loss, (size_t)ne);
    for (int i = 0; rc == LS_OK && i < (int)n_evals; i++) /* 0 <= eval_step[0] < eval_step[1] < ... <= step */
        if (!(eval_step[i] >= 0 && eval_step[i] <= step && eval_step[i] == floorf(eval_step[i]) &&
              (i == 0 || eval_step[i] > eval_step[i - 1])))
            rc = ls_error("%s: validation %d is at step %g, not a step in 0..%.0f after the one before (a damaged "
                          "checkpoint)", path, i, (double)eval_step[i], step);
    if (rc == LS_OK) {
        st->step = (int)step;
        st->epoch = (int)epoch;
        st->cursor = (int)cursor;
        st->n_evals = (int)n_evals;
        st->train_tokens = tokens;
        st->train_seconds = seconds;
        st->wall_seconds = wall;
        st->data_checksum = checksum;
        for (int i = 0; i < st->n_evals; i++) st->eval_step[i] = (int)eval_step[i];
    }
    free(eval_step);
    ls_safetensors_close(&f);
    return rc;
}
