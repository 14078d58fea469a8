/*
 * qwen2.h: running the Qwen2 model (model.h) on a backend (backend.h): forward with the fused
 * output head and loss, and backward to the LoRA tensors and the head bias.
 *
 * Training memory is planned once per (B, T): ls_activations holds, in one backend block, every
 * tensor the backward pass needs (per layer) and the scratch it works in. Shapes use the letters
 * of model.h; N = B*T rows.
 */
#ifndef LORASWEEP_QWEN2_H
#define LORASWEEP_QWEN2_H

#include "lorasweep/backend.h"
#include "lorasweep/model.h"

typedef struct {
    int B, T;                 /* planned batch and sequence length */
    int32_t *ids;             /* (N) input token ids (backend memory) */
    int32_t *targets;         /* (N) next-token targets, -1 where no loss is taken */
    /* kept by forward for backward */
    float *x_in;              /* (L+1, N, C) residual stream entering layer l; [L] enters the final norm */
    float *ln1, *ln2;         /* (L, N, C) normalised inputs of attention and of the MLP */
    float *rstd1, *rstd2;     /* (L, N) */
    float *q;                 /* (L, N, NH*hd) after RoPE */
    float *k, *v;             /* (L, N, KVH*hd) k after RoPE */
    float *att;               /* (L, N, NH*hd) attention output before o_proj */
    float *lse;               /* (L, B, NH, T) log-sum-exp of each attention row */
    float *x_mid;             /* (L, N, C) residual stream after attention */
    float *gate, *up, *hmlp;  /* (L, N, F) */
    float *lora_xa;           /* (L, 7, N, R) x A^T of each targeted projection, or NULL */
    float *lnf, *rstdf;       /* (N, C), (N) */
    /* backward scratch */
    float *dx;                /* (N, C) gradient of the residual stream */
    float *dln;               /* (N, C) */
    float *dq, *datt;         /* (N, NH*hd) */
    float *dk, *dv;           /* (N, KVH*hd) */
    float *dgate, *dup, *dh;  /* (N, F) */
    float *dxa;               /* (N, R) */
    void *arena;
    size_t arena_bytes;
} ls_activations;

/* Backend copies of the frozen model and of an adapter, for the ops of backend.h. On a backend
 * whose memory is host memory (the CPU one) the copy aliases the host object: nothing is
 * allocated or copied, so the CPU path is unchanged. Otherwise one backend block is allocated
 * and uploaded, every pointer at the same offset as in the host arena. LS_ERR when the backend
 * cannot allocate it. The _free functions release only what _to_backend allocated. */
int ls_model_to_backend(const ls_backend *be, const ls_model *host, ls_model *out);
void ls_model_backend_free(const ls_backend *be, ls_model *m);
int ls_lora_to_backend(const ls_backend *be, const ls_lora *host, ls_lora *out);
/* Copy a backend adapter's parameters back into its host original (nothing on the CPU). */
void ls_lora_to_host(const ls_backend *be, const ls_lora *dev, ls_lora *host);
void ls_lora_backend_free(const ls_backend *be, ls_lora *l);

/* Plan and allocate the activations for up to B sequences of T tokens. LS_ERR if the backend
 * cannot allocate it (the message gives the size). */
int ls_activations_init(ls_activations *a, const ls_backend *be, const ls_model_config *cfg, const ls_lora *lora,
                        int B, int T);
void ls_activations_free(ls_activations *a, const ls_backend *be);
/* Bytes ls_activations_init would allocate (for planning and error messages). */
size_t ls_activations_bytes(const ls_model_config *cfg, const ls_lora *lora, int B, int T);

/* Forward over B sequences of T tokens: ids and targets are host arrays (N); targets[i] is the
 * token to predict at position i or -1. Returns the summed cross-entropy over the targets.
 * With grads non-NULL it also starts the backward pass at the head (gradients scaled by
 * grad_scale, typically 1 / number of targets, accumulated into grads->lm_head_bias), and
 * ls_qwen2_backward must follow. lora may be NULL (the base model). */
double ls_qwen2_forward(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_activations *a,
                        const int32_t *ids, const int32_t *targets, int B, int T, ls_lora *grads, float grad_scale);
/* Backward from the head to every LoRA tensor: grads += d loss / d params. */
void ls_qwen2_backward(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_activations *a,
                       ls_lora *grads, int B, int T);

/* Generation state: a KV cache for B sequences of up to T_max positions, and scratch for feeding
 * up to T_chunk tokens per sequence at once (a prompt is fed in chunks). */
typedef struct {
    int B, T_max, T_chunk;
    int len;                     /* positions cached (the same for every sequence) */
    float *k_cache, *v_cache;    /* (L, B, T_max, KVH*hd) */
    ls_activations step;         /* one layer's worth of activations for B*T_chunk rows */
    float *last;                 /* (B, C) final-normed hidden state of each sequence's last token */
    float *logits;               /* (B, V), or (B, n_head_ids) when the head is restricted */
    int n_head_ids;              /* > 0: only these ids' logits are computed (see restrict_head) */
    int32_t head_ids[32];
    float *head_sub;             /* (n_head_ids, C + 1): their rows of the head, then their bias */
    void *arena;
} ls_kv_state;

int ls_kv_init(ls_kv_state *s, const ls_backend *be, const ls_model_config *cfg, const ls_lora *lora, int B,
               int T_max, int T_chunk);
void ls_kv_free(ls_kv_state *s, const ls_backend *be);
/* Feed T_new tokens to each of the first B_active sequences (ids host (B_active * T_new)) at the
 * next positions, in chunks of T_chunk; logits_out (host, (B_active, V)) gets the logits of each
 * sequence's last token. LS_ERR when the cache would overflow. */
int ls_qwen2_decode(const ls_backend *be, const ls_model *m, const ls_lora *lora, ls_kv_state *s,
                    const int32_t *ids, int B_active, int T_new, float *logits_out);
/* Compute only the logits of ids[0..n) from now on (n <= 32; n = 0 computes all again): when
 * sampling is held to a grammar of a dozen tokens, the 151936-row output head is 99.99% waste.
 * ls_qwen2_decode then fills only those entries of logits_out; the rest are left as they were. */
int ls_kv_restrict_head(ls_kv_state *s, const ls_backend *be, const ls_model *m, const ls_lora *lora,
                        const int32_t *ids, int n);
/* Copy sequence 0's cache into sequences 1..B-1 (a prompt prefilled once, sampled B ways). */
void ls_kv_fork(const ls_backend *be, const ls_model_config *cfg, ls_kv_state *s);

#endif
