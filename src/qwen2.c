/*
 * qwen2.c: the Qwen2 transformer with LoRA, forward and backward, written once against the op
 * table of backend.h. It reads like the architecture (golden/README.md):
 *
 *   x = embed(ids)
 *   per layer:  h = rmsnorm(x);  q, k, v = proj(h) (+ bias, + LoRA);  rope(q, k)
 *               x = x + o_proj(attention(q, k, v))
 *               h = rmsnorm(x);  x = x + down(silu(gate(h)) * up(h))
 *   loss = cross_entropy(rmsnorm(x) E^T + head_bias, targets)
 *
 * Every projection goes through one LoRA-aware product, y = x W^T + b + scale * (x A^T) B^T,
 * which never changes W; its backward gives dx and, for targeted projections, dA and dB. The base
 * weights are frozen, so no weight gradient is ever formed. Layer forward and backward sit side by
 * side. Gradients accumulate (+=) into the LoRA gradient block.
 */
#include "lorasweep/qwen2.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"

/* ---- memory plan ------------------------------------------------------------------------- */

/* One entry per activation tensor: where its pointer goes and how many elements it has. The
 * same table sizes the block and points into it (llm.c's malloc_and_point). */
typedef struct {
    void **ptr;
    size_t count;
    size_t elem;
} plan_entry;

static int activations_plan(ls_activations *a, const ls_model_config *c, const ls_lora *lora, int B, int T,
                            plan_entry *plan) {
    size_t N = (size_t)B * T, L = (size_t)c->layers, C = (size_t)c->hidden, F = (size_t)c->intermediate;
    size_t QD = (size_t)c->heads * c->head_dim, KD = (size_t)c->kv_heads * c->head_dim;
    size_t R = lora && lora->targets ? (size_t)lora->rank : 0;
    int n = 0;
#define PLAN(field, cnt, type) plan[n++] = (plan_entry){(void **)&a->field, (cnt), sizeof(type)}
    PLAN(ids, N, int32_t);
    PLAN(targets, N, int32_t);
    PLAN(x_in, (L + 1) * N * C, float);
    PLAN(ln1, L * N * C, float);
    PLAN(ln2, L * N * C, float);
    PLAN(rstd1, L * N, float);
    PLAN(rstd2, L * N, float);
    PLAN(q, L * N * QD, float);
    PLAN(k, L * N * KD, float);
    PLAN(v, L * N * KD, float);
    PLAN(att, L * N * QD, float);
    PLAN(lse, L * (size_t)B * c->heads * T, float);
    PLAN(x_mid, L * N * C, float);
    PLAN(gate, L * N * F, float);
    PLAN(up, L * N * F, float);
    PLAN(hmlp, L * N * F, float);
    PLAN(lora_xa, L * LS_PROJ_COUNT * N * R, float);
    PLAN(lnf, N * C, float);
    PLAN(rstdf, N, float);
    PLAN(dx, N * C, float);
    PLAN(dln, N * C, float);
    PLAN(dq, N * QD, float);
    PLAN(datt, N * QD, float);
    PLAN(dk, N * KD, float);
    PLAN(dv, N * KD, float);
    PLAN(dgate, N * F, float);
    PLAN(dup, N * F, float);
    PLAN(dh, N * F, float);
    PLAN(dxa, N * R, float);
#undef PLAN
    return n;
}

/* Each tensor starts on a 64-byte boundary. */
static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* A backend allocation failed: out of memory (this message, the trial's failure), or a device
 * whose context is lost, which be->check() reports as a fault of the machine: then the message
 * says both and keeps the machine mark, so the sweep stops instead of blaming the trial. */
static int alloc_error(const ls_backend *be, const char *fmt, ...) LS_PRINTF(2, 3);
static int alloc_error(const ls_backend *be, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (be->check() != LS_OK) return ls_error_prefix("%s", msg);
    return ls_error("%s", msg);
}

size_t ls_activations_bytes(const ls_model_config *cfg, const ls_lora *lora, int B, int T) {
    ls_activations a;
    plan_entry plan[40];
    int n = activations_plan(&a, cfg, lora, B, T, plan);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += align64(plan[i].count * plan[i].elem);
    return total;
}

int ls_activations_init(ls_activations *a, const ls_backend *be, const ls_model_config *cfg, const ls_lora *lora,
                        int B, int T) {
    memset(a, 0, sizeof *a);
    plan_entry plan[40];
    int n = activations_plan(a, cfg, lora, B, T, plan);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += align64(plan[i].count * plan[i].elem);
    a->arena = be->alloc(total);
    if (!a->arena)
        return alloc_error(be, "cannot allocate %.2f GiB of activations for batch %d x %d tokens on %s",
                        (double)total / (1 << 30), B, T, be->name);
    a->arena_bytes = total;
    char *p = a->arena;
    for (int i = 0; i < n; i++) {
        *plan[i].ptr = plan[i].count ? p : NULL;
        p += align64(plan[i].count * plan[i].elem);
    }
    a->B = B;
    a->T = T;
    return LS_OK;
}

void ls_activations_free(ls_activations *a, const ls_backend *be) {
    if (a->arena) be->release(a->arena);
    memset(a, 0, sizeof *a);
}

/* ---- model and adapter in backend memory ------------------------------------------------ */

/* The pointer into dev_arena at the offset p has in host_arena (NULL stays NULL). */
static float *rebase(const float *p, const float *host_arena, float *dev_arena) {
    return p ? dev_arena + (p - host_arena) : NULL;
}

int ls_model_to_backend(const ls_backend *be, const ls_model *host, ls_model *out) {
    *out = *host;
    if (be->host_memory) return LS_OK;
    size_t bytes = sizeof(float) * host->arena_floats;
    float *dev = be->alloc(bytes);
    if (!dev)
        return alloc_error(be, "cannot allocate %.2f GiB for the model's weights on %s", (double)bytes / (1 << 30), be->name);
    be->upload(dev, host->arena, bytes);
    const float *h = host->arena;
    out->arena = dev;
    out->embed = rebase(host->embed, h, dev);
    out->lm_head = rebase(host->lm_head, h, dev);
    out->final_norm = rebase(host->final_norm, h, dev);
    out->layer = ls_malloc(sizeof(ls_layer_weights) * (size_t)(host->cfg.layers > 0 ? host->cfg.layers : 1));
    for (int l = 0; l < host->cfg.layers; l++) {
        const ls_layer_weights *s = &host->layer[l];
        out->layer[l] = (ls_layer_weights){
            rebase(s->attn_norm, h, dev), rebase(s->wq, h, dev), rebase(s->bq, h, dev),
            rebase(s->wk, h, dev),        rebase(s->bk, h, dev), rebase(s->wv, h, dev),
            rebase(s->bv, h, dev),        rebase(s->wo, h, dev), rebase(s->mlp_norm, h, dev),
            rebase(s->wgate, h, dev),     rebase(s->wup, h, dev), rebase(s->wdown, h, dev),
        };
    }
    return LS_OK;
}

void ls_model_backend_free(const ls_backend *be, ls_model *m) {
    if (!be->host_memory && m->arena) {
        be->release(m->arena);
        free(m->layer);
    }
    memset(m, 0, sizeof *m);
}

int ls_lora_to_backend(const ls_backend *be, const ls_lora *host, ls_lora *out) {
    *out = *host;
    if (be->host_memory) return LS_OK;
    size_t bytes = sizeof(float) * host->arena_floats, pairs = (size_t)host->layers * LS_PROJ_COUNT;
    float *dev = be->alloc(bytes);
    if (!dev) return alloc_error(be, "cannot allocate %.1f MiB for the LoRA adapter on %s", (double)bytes / (1 << 20), be->name);
    be->upload(dev, host->arena, bytes);
    out->arena = dev;
    out->lm_head_bias = rebase(host->lm_head_bias, host->arena, dev);
    out->pair = ls_calloc(pairs ? pairs : 1, sizeof(ls_lora_pair));
    for (size_t i = 0; i < pairs; i++)
        out->pair[i] = (ls_lora_pair){rebase(host->pair[i].a, host->arena, dev), rebase(host->pair[i].b, host->arena, dev)};
    return LS_OK;
}

void ls_lora_to_host(const ls_backend *be, const ls_lora *dev, ls_lora *host) {
    if (!be->host_memory) be->download(host->arena, dev->arena, sizeof(float) * host->arena_floats);
}

void ls_lora_backend_free(const ls_backend *be, ls_lora *l) {
    if (!be->host_memory && l->arena) {
        be->release(l->arena);
        free(l->pair);
    }
    memset(l, 0, sizeof *l);
}

/* ---- the LoRA-aware projection ------------------------------------------------------------ */

static const ls_lora_pair *lora_pair(const ls_lora *lora, int layer, ls_proj p) {
    if (!lora || !(lora->targets & (1u << p))) return NULL;
    return &lora->pair[layer * LS_PROJ_COUNT + p];
}

static float *lora_xa(const ls_activations *a, const ls_lora *lora, int layer, ls_proj p, int N) {
    return a->lora_xa + ((size_t)layer * LS_PROJ_COUNT + p) * (size_t)N * lora->rank;
}

/* y (N, out) = x (N, in) W^T + b + scale * xa B^T, with xa (N, R) = x A^T kept for backward. */
static void linear_forward(const ls_backend *be, float *y, float *xa, const float *x, const float *w,
                           const float *b, const ls_lora_pair *pair, const ls_lora *lora, int N, int out, int in) {
    be->matmul(y, x, w, N, out, in, 0, 1, 1.0f, 0.0f);
    if (b) be->add_bias(y, b, N, out);
    if (!pair) return;
    be->matmul(xa, x, pair->a, N, lora->rank, in, 0, 1, 1.0f, 0.0f);
    be->matmul(y, xa, pair->b, N, out, lora->rank, 0, 1, lora->scale, 1.0f);
}

/* dx (N, in) = dy W + dxa A (accumulate: dx += ...), with dxa = scale * dy B; dB += scale * dy^T xa;
 * dA += dxa^T x. The first projection into a gradient overwrites it, the ones that share its
 * input add to it: no buffer is zeroed to be added to. */
static void linear_backward(const ls_backend *be, float *dx, int accumulate, ls_lora_pair *grad, float *dxa,
                            const float *dy, const float *x, const float *xa, const float *w, const ls_lora_pair *pair,
                            const ls_lora *lora, int N, int out, int in) {
    be->matmul(dx, dy, w, N, in, out, 0, 0, 1.0f, accumulate ? 1.0f : 0.0f);
    if (!pair) return;
    int R = lora->rank;
    be->matmul(grad->b, dy, xa, out, R, N, 1, 0, lora->scale, 1.0f);
    be->matmul(dxa, dy, pair->b, N, R, out, 0, 0, lora->scale, 0.0f);
    be->matmul(grad->a, dxa, x, R, in, N, 1, 0, 1.0f, 1.0f);
    be->matmul(dx, dxa, pair->a, N, in, R, 0, 0, 1.0f, 1.0f);
}

/* ---- one layer, forward and backward ------------------------------------------------------ */

typedef struct { /* this layer's slices of the activations */
    float *x, *ln1, *rstd1, *q, *k, *v, *att, *lse, *x_mid, *ln2, *rstd2, *gate, *up, *hmlp, *x_out;
    float *xa[LS_PROJ_COUNT]; /* x A^T of each targeted projection (NULL where not targeted) */
} layer_acts;

/* Where a layer's keys and values also go during generation: (B, T_max, KVH*hd) blocks. */
typedef struct {
    float *k, *v;
    int T_max, len; /* positions already cached */
} kv_slot;

static layer_acts layer_slices(const ls_activations *a, const ls_model_config *c, const ls_lora *lora, int l,
                               int N) {
    size_t C = (size_t)c->hidden, F = (size_t)c->intermediate;
    size_t QD = (size_t)c->heads * c->head_dim, KD = (size_t)c->kv_heads * c->head_dim;
    layer_acts s = {
        .x = a->x_in + (size_t)l * N * C,
        .ln1 = a->ln1 + (size_t)l * N * C,
        .rstd1 = a->rstd1 + (size_t)l * N,
        .q = a->q + (size_t)l * N * QD,
        .k = a->k + (size_t)l * N * KD,
        .v = a->v + (size_t)l * N * KD,
        .att = a->att + (size_t)l * N * QD,
        .lse = a->lse + (size_t)l * N * c->heads,
        .x_mid = a->x_mid + (size_t)l * N * C,
        .ln2 = a->ln2 + (size_t)l * N * C,
        .rstd2 = a->rstd2 + (size_t)l * N,
        .gate = a->gate + (size_t)l * N * F,
        .up = a->up + (size_t)l * N * F,
        .hmlp = a->hmlp + (size_t)l * N * F,
        .x_out = a->x_in + (size_t)(l + 1) * N * C,
        .xa = {0},
    };
    for (int p = 0; p < LS_PROJ_COUNT; p++)
        if (lora_pair(lora, l, (ls_proj)p)) s.xa[p] = lora_xa(a, lora, l, (ls_proj)p, N);
    return s;
}

#define XA(p) (s.xa[p])

/* One layer over B sequences of T new tokens at positions pos0.. . Training: kv is NULL and the
 * T tokens attend to each other. Generation: keys and values are appended to kv's cache and the
 * new tokens attend to everything cached. */
static void layer_forward(const ls_backend *be, const ls_model *m, const ls_lora *lora, layer_acts s, int l, int B,
                          int T, const kv_slot *kv) {
    const ls_model_config *c = &m->cfg;
    const ls_layer_weights *w = &m->layer[l];
    int N = B * T, C = c->hidden, F = c->intermediate, hd = c->head_dim;
    int QD = c->heads * hd, KD = c->kv_heads * hd, pos0 = kv ? kv->len : 0;

    be->rmsnorm_forward(s.ln1, s.rstd1, s.x, w->attn_norm, N, C, c->rms_eps);
    linear_forward(be, s.q, XA(LS_PROJ_Q), s.ln1, w->wq, w->bq, lora_pair(lora, l, LS_PROJ_Q), lora, N, QD, C);
    linear_forward(be, s.k, XA(LS_PROJ_K), s.ln1, w->wk, w->bk, lora_pair(lora, l, LS_PROJ_K), lora, N, KD, C);
    linear_forward(be, s.v, XA(LS_PROJ_V), s.ln1, w->wv, w->bv, lora_pair(lora, l, LS_PROJ_V), lora, N, KD, C);
    be->rope_forward(s.q, N, T, pos0, c->heads, hd, c->rope_theta);
    be->rope_forward(s.k, N, T, pos0, c->kv_heads, hd, c->rope_theta);
    if (!kv) {
        be->attention_forward(s.att, s.lse, s.q, s.k, s.v, B, T, c->heads, c->kv_heads, hd);
    } else {
        size_t row = (size_t)KD, seq = (size_t)kv->T_max * KD;
        for (int b = 0; b < B; b++) {
            be->copy(kv->k + b * seq + (size_t)pos0 * row, s.k + (size_t)b * T * row, sizeof(float) * T * row);
            be->copy(kv->v + b * seq + (size_t)pos0 * row, s.v + (size_t)b * T * row, sizeof(float) * T * row);
        }
        be->attention_cached(s.att, s.q, kv->k, kv->v, B, T, pos0 + T, kv->T_max, c->heads, c->kv_heads, hd);
    }
    linear_forward(be, s.x_mid, XA(LS_PROJ_O), s.att, w->wo, NULL, lora_pair(lora, l, LS_PROJ_O), lora, N, C, QD);
    be->add(s.x_mid, s.x, (size_t)N * C);

    be->rmsnorm_forward(s.ln2, s.rstd2, s.x_mid, w->mlp_norm, N, C, c->rms_eps);
    linear_forward(be, s.gate, XA(LS_PROJ_GATE), s.ln2, w->wgate, NULL, lora_pair(lora, l, LS_PROJ_GATE), lora, N,
                   F, C);
    linear_forward(be, s.up, XA(LS_PROJ_UP), s.ln2, w->wup, NULL, lora_pair(lora, l, LS_PROJ_UP), lora, N, F, C);
    be->swiglu_forward(s.hmlp, s.gate, s.up, (size_t)N * F);
    linear_forward(be, s.x_out, XA(LS_PROJ_DOWN), s.hmlp, w->wdown, NULL, lora_pair(lora, l, LS_PROJ_DOWN), lora,
                   N, C, F);
    be->add(s.x_out, s.x_mid, (size_t)N * C);
}

/* On entry a->dx holds d loss / d x_out of this layer; on exit d loss / d x (its input). */
static void layer_backward(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_lora *grads,
                           ls_activations *a, int l, int B, int T) {
    const ls_model_config *c = &m->cfg;
    const ls_layer_weights *w = &m->layer[l];
    int N = B * T, C = c->hidden, F = c->intermediate, hd = c->head_dim;
    int QD = c->heads * hd, KD = c->kv_heads * hd;
    layer_acts s = layer_slices(a, c, lora, l, N);
#define GRAD(p) (&grads->pair[l * LS_PROJ_COUNT + (p)])

    /* MLP: x_out = x_mid + down(silu(gate(ln2)) * up(ln2)) */
    linear_backward(be, a->dh, 0, GRAD(LS_PROJ_DOWN), a->dxa, a->dx, s.hmlp, XA(LS_PROJ_DOWN), w->wdown,
                    lora_pair(lora, l, LS_PROJ_DOWN), lora, N, C, F);
    be->swiglu_backward(a->dgate, a->dup, a->dh, s.gate, s.up, (size_t)N * F);
    linear_backward(be, a->dln, 0, GRAD(LS_PROJ_GATE), a->dxa, a->dgate, s.ln2, XA(LS_PROJ_GATE), w->wgate,
                    lora_pair(lora, l, LS_PROJ_GATE), lora, N, F, C);
    linear_backward(be, a->dln, 1, GRAD(LS_PROJ_UP), a->dxa, a->dup, s.ln2, XA(LS_PROJ_UP), w->wup,
                    lora_pair(lora, l, LS_PROJ_UP), lora, N, F, C);
    be->rmsnorm_backward(a->dx, a->dln, s.x_mid, w->mlp_norm, s.rstd2, N, C); /* dx is now d x_mid */

    /* attention: x_mid = x + o_proj(attention(rope(q), rope(k), v)) */
    linear_backward(be, a->datt, 0, GRAD(LS_PROJ_O), a->dxa, a->dx, s.att, XA(LS_PROJ_O), w->wo,
                    lora_pair(lora, l, LS_PROJ_O), lora, N, C, QD);
    be->attention_backward(a->dq, a->dk, a->dv, a->datt, s.att, s.lse, s.q, s.k, s.v, B, T, c->heads, c->kv_heads,
                           hd);
    be->rope_backward(a->dq, N, T, 0, c->heads, hd, c->rope_theta);
    be->rope_backward(a->dk, N, T, 0, c->kv_heads, hd, c->rope_theta);
    linear_backward(be, a->dln, 0, GRAD(LS_PROJ_Q), a->dxa, a->dq, s.ln1, XA(LS_PROJ_Q), w->wq,
                    lora_pair(lora, l, LS_PROJ_Q), lora, N, QD, C);
    linear_backward(be, a->dln, 1, GRAD(LS_PROJ_K), a->dxa, a->dk, s.ln1, XA(LS_PROJ_K), w->wk,
                    lora_pair(lora, l, LS_PROJ_K), lora, N, KD, C);
    linear_backward(be, a->dln, 1, GRAD(LS_PROJ_V), a->dxa, a->dv, s.ln1, XA(LS_PROJ_V), w->wv,
                    lora_pair(lora, l, LS_PROJ_V), lora, N, KD, C);
    be->rmsnorm_backward(a->dx, a->dln, s.x, w->attn_norm, s.rstd1, N, C); /* dx is now d x */
#undef GRAD
}
#undef XA

/* ---- the whole model ---------------------------------------------------------------------- */

double ls_qwen2_forward(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_activations *a,
                        const int32_t *ids, const int32_t *targets, int B, int T, ls_lora *grads, float grad_scale) {
    const ls_model_config *c = &m->cfg;
    int N = B * T, C = c->hidden;
    be->upload(a->ids, ids, sizeof(int32_t) * (size_t)N);
    be->upload(a->targets, targets, sizeof(int32_t) * (size_t)N);
    be->embedding(a->x_in, a->ids, m->embed, N, C);
    for (int l = 0; l < c->layers; l++) layer_forward(be, m, lora, layer_slices(a, c, lora, l, N), l, B, T, NULL);
    const float *x_last = a->x_in + (size_t)c->layers * N * C;
    be->rmsnorm_forward(a->lnf, a->rstdf, x_last, m->final_norm, N, C, c->rms_eps);
    const float *head_bias = lora ? lora->lm_head_bias : NULL;
    if (grads) be->zero(a->dln, sizeof(float) * (size_t)N * C);
    /* a->targets is backend memory: the fused head reads it where it runs. */
    return be->head_loss(grads ? a->dln : NULL, grads ? grads->lm_head_bias : NULL, a->lnf, m->lm_head, head_bias,
                         a->targets, N, C, c->vocab_size, grad_scale);
}

void ls_qwen2_backward(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_activations *a,
                       ls_lora *grads, int B, int T) {
    const ls_model_config *c = &m->cfg;
    int N = B * T, C = c->hidden;
    /* a->dln holds d loss / d lnf from the fused head. */
    be->zero(a->dx, sizeof(float) * (size_t)N * C);
    be->rmsnorm_backward(a->dx, a->dln, a->x_in + (size_t)c->layers * N * C, m->final_norm, a->rstdf, N, C);
    for (int l = c->layers - 1; l >= 0; l--) layer_backward(be, m, lora, grads, a, l, B, T);
}

/* ---- generation with a KV cache ----------------------------------------------------------- */

int ls_kv_init(ls_kv_state *s, const ls_backend *be, const ls_model_config *cfg, const ls_lora *lora, int B,
               int T_max, int T_chunk) {
    memset(s, 0, sizeof *s);
    /* One layer of activations suffices: nothing is kept for a backward pass. */
    ls_model_config one_layer = *cfg;
    one_layer.layers = 1;
    if (ls_activations_init(&s->step, be, &one_layer, lora, B, T_chunk) != LS_OK) return LS_ERR;
    size_t cache = (size_t)cfg->layers * B * T_max * cfg->kv_heads * cfg->head_dim;
    size_t bytes = sizeof(float) * (2 * cache + (size_t)B * cfg->hidden + (size_t)B * cfg->vocab_size);
    s->arena = be->alloc(bytes);
    if (!s->arena) {
        ls_activations_free(&s->step, be);
        return alloc_error(be, "cannot allocate %.2f GiB for the KV cache of %d x %d positions on %s",
                        (double)bytes / (1 << 30), B, T_max, be->name);
    }
    s->k_cache = s->arena;
    s->v_cache = s->k_cache + cache;
    s->last = s->v_cache + cache;
    s->logits = s->last + (size_t)B * cfg->hidden;
    s->B = B, s->T_max = T_max, s->T_chunk = T_chunk;
    return LS_OK;
}

void ls_kv_free(ls_kv_state *s, const ls_backend *be) {
    ls_activations_free(&s->step, be);
    if (s->head_sub) be->release(s->head_sub);
    if (s->arena) be->release(s->arena);
    memset(s, 0, sizeof *s);
}

void ls_kv_fork(const ls_backend *be, const ls_model_config *cfg, ls_kv_state *s) {
    size_t seq = (size_t)s->T_max * cfg->kv_heads * cfg->head_dim, bytes = sizeof(float) * (size_t)s->len *
                                                                          cfg->kv_heads * cfg->head_dim;
    for (int l = 0; l < cfg->layers; l++)
        for (int b = 1; b < s->B; b++) {
            size_t layer = (size_t)l * s->B * seq;
            be->copy(s->k_cache + layer + b * seq, s->k_cache + layer, bytes);
            be->copy(s->v_cache + layer + b * seq, s->v_cache + layer, bytes);
        }
}

/* Feed one chunk of T tokens per sequence (ids host, (B, T) laid out per sequence). */
static void decode_chunk(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_kv_state *s,
                         const int32_t *ids, int B, int T) {
    const ls_model_config *c = &m->cfg;
    ls_activations *a = &s->step;
    int N = B * T, C = c->hidden;
    size_t seq = (size_t)s->T_max * c->kv_heads * c->head_dim;
    be->upload(a->ids, ids, sizeof(int32_t) * (size_t)N);
    be->embedding(a->x_in, a->ids, m->embed, N, C);
    for (int l = 0; l < c->layers; l++) {
        /* The one layer of scratch is reused: its output becomes the next layer's input. */
        layer_acts acts = layer_slices(a, c, lora, 0, N);
        for (int p = 0; p < LS_PROJ_COUNT; p++)
            acts.xa[p] = lora_pair(lora, l, (ls_proj)p) ? lora_xa(a, lora, 0, (ls_proj)p, N) : NULL;
        kv_slot kv = {s->k_cache + (size_t)l * s->B * seq, s->v_cache + (size_t)l * s->B * seq, s->T_max, s->len};
        layer_forward(be, m, lora, acts, l, B, T, &kv);
        be->copy(acts.x, acts.x_out, sizeof(float) * (size_t)N * C);
    }
    /* Final norm of each sequence's last row only. */
    for (int b = 0; b < B; b++)
        be->copy(a->dx + (size_t)b * C, a->x_in + ((size_t)b * T + T - 1) * C, sizeof(float) * (size_t)C);
    be->rmsnorm_forward(s->last, a->rstdf, a->dx, m->final_norm, B, C, c->rms_eps);
    if (s->n_head_ids > 0) { /* the rows of the allowed ids only; their bias follows them */
        int n = s->n_head_ids;
        be->matmul(s->logits, s->last, s->head_sub, B, n, C, 0, 1, 1.0f, 0.0f);
        be->add_bias(s->logits, s->head_sub + (size_t)n * C, B, n);
    } else {
        be->matmul(s->logits, s->last, m->lm_head, B, c->vocab_size, C, 0, 1, 1.0f, 0.0f);
        if (lora && lora->lm_head_bias) be->add_bias(s->logits, lora->lm_head_bias, B, c->vocab_size);
    }
    s->len += T;
}

int ls_qwen2_decode(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_kv_state *s,
                    const int32_t *ids, int B_active, int T_new, float *logits_out) {
    if (B_active < 1 || B_active > s->B) return ls_error("decode: %d sequences, the state holds %d", B_active, s->B);
    if (s->len + T_new > s->T_max)
        return ls_error("generation needs %d positions, more than the %d planned", s->len + T_new, s->T_max);
    int32_t *chunk = ls_malloc(sizeof(int32_t) * (size_t)B_active * s->T_chunk);
    for (int t0 = 0; t0 < T_new; t0 += s->T_chunk) {
        int T = T_new - t0 < s->T_chunk ? T_new - t0 : s->T_chunk;
        for (int b = 0; b < B_active; b++) memcpy(chunk + (size_t)b * T, ids + (size_t)b * T_new + t0, sizeof(int32_t) * T);
        decode_chunk(be, m, lora, s, chunk, B_active, T);
    }
    free(chunk);
    if (be->check() != LS_OK) return LS_ERR;
    if (logits_out && s->n_head_ids == 0)
        be->download(logits_out, s->logits, sizeof(float) * (size_t)B_active * m->cfg.vocab_size);
    if (logits_out && s->n_head_ids > 0) {
        int n = s->n_head_ids;
        float sub[32 * 64];
        for (int b0 = 0; b0 < B_active; b0 += 64) { /* 64 sequences at a time through a small buffer */
            int nb = B_active - b0 < 64 ? B_active - b0 : 64;
            be->download(sub, s->logits + (size_t)b0 * n, sizeof(float) * (size_t)nb * n);
            for (int b = 0; b < nb; b++)
                for (int j = 0; j < n; j++) logits_out[(size_t)(b0 + b) * m->cfg.vocab_size + s->head_ids[j]] = sub[b * n + j];
        }
    }
    return LS_OK;
}

int ls_kv_restrict_head(ls_kv_state *s, const ls_backend *be, const ls_model *m, const ls_lora *lora,
                        const int32_t *ids, int n) {
    int C = m->cfg.hidden;
    if (n < 0 || n > 32) return ls_error("restrict_head: %d ids, at most 32", n);
    if (s->head_sub) be->release(s->head_sub);
    s->head_sub = NULL;
    s->n_head_ids = 0;
    if (n == 0) return LS_OK;
    s->head_sub = be->alloc(sizeof(float) * (size_t)n * (C + 1));
    if (!s->head_sub) return alloc_error(be, "cannot allocate the restricted head on %s", be->name);
    for (int j = 0; j < n; j++) {
        if (ids[j] < 0 || ids[j] >= m->cfg.vocab_size) return ls_error("restrict_head: id %d out of range", ids[j]);
        s->head_ids[j] = ids[j];
        be->copy(s->head_sub + (size_t)j * C, m->lm_head + (size_t)ids[j] * C, sizeof(float) * (size_t)C);
        if (lora && lora->lm_head_bias) be->copy(s->head_sub + (size_t)n * C + j, lora->lm_head_bias + ids[j], sizeof(float));
    }
    s->n_head_ids = n;
    return LS_OK;
}
