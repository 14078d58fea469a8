/*
 * flops.h: FLOPS accounting of the Qwen2 forward pass, training and generation, by the course's
 * fixed rules (docs/flops.md has every formula and the reasons for each choice):
 *   +, -, *, /, comparison: 1 FLOP each;  exp, log, sin, cos, sqrt: 10 FLOPs each;
 *   a matrix product (m x n)(n x p): m*p*(2n - 1);  backward = 2 x forward.
 * Counted: the embedding-free forward (per layer: RMSNorm, q/k/v projections and biases, RoPE
 * with its sin/cos tables, scores, scaling, causal mask, softmax, P.V, o_proj, residual adds,
 * RMSNorm, SwiGLU MLP; then the final RMSNorm, the output head and its optional bias), the LoRA
 * branches of the targeted projections, the training loss, and sampling during generation.
 * The embedding lookup is a copy and costs nothing.
 *
 * Choices (conservative where there was a choice): attention is counted over the full T x T
 * matrix as the course did (scores, scale, mask, softmax, P.V), not only the causal triangle;
 * LoRA is counted unmerged (base product + adapter branch) in training and generation; every
 * generated sample pays for its own prefill of the prompt (no sharing across samples).
 *
 * Precision: counts are doubles. Every term of one sequence is an exact integer (below 2^53 =
 * 9.0e15 for any real config); sums beyond 2^53 are rounded, with a relative error under 1e-15.
 *
 * Shapes use the letters of model.h: C hidden, F intermediate, L layers, NH and KVH heads, hd
 * head dim, V vocabulary, R LoRA rank, T tokens per sequence, B sequences per batch.
 */
#ifndef LORASWEEP_FLOPS_H
#define LORASWEEP_FLOPS_H

#include "lorasweep/model.h"

/* The operations of one forward pass, in the order the model runs them. Per-layer operations
 * are summed over the L layers. */
typedef enum {
    LS_FLOPS_ATTN_NORM,    /* input_layernorm RMSNorm */
    LS_FLOPS_Q_PROJ,       /* base products, without bias or LoRA */
    LS_FLOPS_K_PROJ,
    LS_FLOPS_V_PROJ,
    LS_FLOPS_QKV_BIAS,     /* the three bias adds */
    LS_FLOPS_ROPE_TABLE,   /* sin/cos of each position, once per sequence (shared by all layers) */
    LS_FLOPS_ROPE,         /* rotate-half on q and k */
    LS_FLOPS_SCORES,       /* Q K^T per query head */
    LS_FLOPS_SCALE,        /* * 1/sqrt(hd) */
    LS_FLOPS_MASK,         /* causal mask, one add per element of the full T x T matrix */
    LS_FLOPS_SOFTMAX,      /* max, subtract, exp, sum, divide */
    LS_FLOPS_ATTN_V,       /* P V per query head */
    LS_FLOPS_O_PROJ,
    LS_FLOPS_ATTN_RESIDUAL,
    LS_FLOPS_MLP_NORM,     /* post_attention_layernorm RMSNorm */
    LS_FLOPS_GATE_PROJ,
    LS_FLOPS_UP_PROJ,
    LS_FLOPS_SILU,         /* x * sigmoid(x) on the gate */
    LS_FLOPS_GLU_MUL,      /* silu(gate) * up */
    LS_FLOPS_DOWN_PROJ,
    LS_FLOPS_MLP_RESIDUAL,
    LS_FLOPS_LORA,         /* every targeted projection's x A^T B^T, scale and add */
    LS_FLOPS_FINAL_NORM,
    LS_FLOPS_HEAD,         /* T x C by C x V */
    LS_FLOPS_HEAD_BIAS,    /* the adapter's optional (V) bias */
    LS_FLOPS_OP_COUNT
} ls_flops_op;

/* "attn_norm", "q_proj", ... as the JSON of `lorasweep flops` names them. */
extern const char *const ls_flops_op_names[LS_FLOPS_OP_COUNT];

/* FLOPS of one forward pass, per operation and in total. */
typedef struct {
    double op[LS_FLOPS_OP_COUNT];
    double total; /* the sum of op[] */
} ls_flops_breakdown;

/* What the adapter adds. rank 0 or targets 0 means no LoRA branch (the base model). */
typedef struct {
    int rank;         /* R */
    unsigned targets; /* bit (1 << ls_proj) per targeted projection, as ls_lora.targets */
    int head_bias;    /* a (V) bias on the output head */
} ls_flops_lora;

/* FLOPS of generation (see ls_flops_generate). */
typedef struct {
    double prefill;  /* one forward of the prompt, per sample */
    double decode;   /* the new_tokens - 1 cached one-token steps, per sample */
    double sampling; /* drawing new_tokens tokens from the logits, per sample */
    double total;    /* samples x (prefill + decode + sampling) */
} ls_flops_gen;

/* Each function checks its arguments: every config dimension > 0 and KVH dividing NH (NH*hd
 * need not equal C); T, B, samples, new tokens >= 1, steps >= 0; no position at or past
 * cfg->max_positions when that is > 0; rank >= 0; no targets bit at or above LS_PROJ_COUNT.
 * It returns LS_OK, or LS_ERR with a message naming the bad value and *out untouched. */

/* One forward pass of a sequence of T tokens (positions 0..T-1), logits at every position. */
int ls_flops_forward(const ls_model_config *cfg, int T, const ls_flops_lora *lora, ls_flops_breakdown *out);

/* The same forward as a causal-aware implementation executes it: attention (scores, scale,
 * softmax, P.V) over the T (T + 1) / 2 visible (query, key) pairs instead of the full T x T
 * matrix, and no mask. Not the course's count: `lorasweep bench` uses it for the work a training
 * step must do (equal to the sum of T decode steps at positions 0 .. T - 1). */
int ls_flops_forward_causal(const ls_model_config *cfg, int T, const ls_flops_lora *lora, ls_flops_breakdown *out);

/* One forward step with a KV cache: one new token at position `position` (0-based) attending to
 * position + 1 keys (the cached ones and its own); no mask is needed. */
int ls_flops_decode_step(const ls_model_config *cfg, int position, const ls_flops_lora *lora,
                         ls_flops_breakdown *out);

/* The training loss of one sequence from its T x V logits: cross-entropy at every one of the T
 * positions (max, subtract, exp, sum, log, pick the target) and its share of the batch mean. */
int ls_flops_loss(const ls_model_config *cfg, int T, double *out);

/* One optimiser step on B sequences of T tokens: B x (forward + loss) x 3, the 3 being forward
 * plus backward = 2 x forward. The optimiser update itself is not counted (it is O(params)). */
int ls_flops_train_step(const ls_model_config *cfg, int T, int B, const ls_flops_lora *lora, double *out);

/* steps x ls_flops_train_step. */
int ls_flops_train_total(const ls_model_config *cfg, int T, int B, long steps, const ls_flops_lora *lora,
                         double *out);

/* Sampling `samples` continuations of new_tokens tokens after a prompt of prompt_len tokens,
 * with a KV cache: per sample a prefill forward of the prompt (its last logits give the first
 * new token), then new_tokens - 1 decode steps at positions prompt_len .. prompt_len +
 * new_tokens - 2, and one draw per new token (temperature, softmax, inverse-CDF). Prefill is not
 * shared across samples. */
int ls_flops_generate(const ls_model_config *cfg, const ls_flops_lora *lora, int prompt_len, int new_tokens,
                      int samples, ls_flops_gen *out);

#endif
