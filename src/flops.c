/*
 * flops.c: FLOPS of the Qwen2 forward pass, training and generation by the course's rules
 * (flops.h; every formula and choice is in docs/flops.md).
 *
 * One function counts a "chunk": Tq query tokens that attend to Tk keys each. A full sequence is
 * the chunk Tq = Tk = T with the causal mask applied over the whole T x T matrix (the course's
 * convention); a cached decode step is Tq = 1, Tk = position + 1, where every key is visible and
 * no mask is applied. Everything else (projections, norms, MLP, head) scales with Tq only.
 */
#include "lorasweep/flops.h"

#include "lorasweep/common.h"

const char *const ls_flops_op_names[LS_FLOPS_OP_COUNT] = {
    [LS_FLOPS_ATTN_NORM] = "attn_norm",       [LS_FLOPS_Q_PROJ] = "q_proj",
    [LS_FLOPS_K_PROJ] = "k_proj",             [LS_FLOPS_V_PROJ] = "v_proj",
    [LS_FLOPS_QKV_BIAS] = "qkv_bias",         [LS_FLOPS_ROPE_TABLE] = "rope_table",
    [LS_FLOPS_ROPE] = "rope",                 [LS_FLOPS_SCORES] = "scores",
    [LS_FLOPS_SCALE] = "scale",               [LS_FLOPS_MASK] = "mask",
    [LS_FLOPS_SOFTMAX] = "softmax",           [LS_FLOPS_ATTN_V] = "attn_v",
    [LS_FLOPS_O_PROJ] = "o_proj",             [LS_FLOPS_ATTN_RESIDUAL] = "attn_residual",
    [LS_FLOPS_MLP_NORM] = "mlp_norm",         [LS_FLOPS_GATE_PROJ] = "gate_proj",
    [LS_FLOPS_UP_PROJ] = "up_proj",           [LS_FLOPS_SILU] = "silu",
    [LS_FLOPS_GLU_MUL] = "glu_mul",           [LS_FLOPS_DOWN_PROJ] = "down_proj",
    [LS_FLOPS_MLP_RESIDUAL] = "mlp_residual", [LS_FLOPS_LORA] = "lora",
    [LS_FLOPS_FINAL_NORM] = "final_norm",     [LS_FLOPS_HEAD] = "head",
    [LS_FLOPS_HEAD_BIAS] = "head_bias",
};

/* The course's unit costs. */
enum { FLOP_EXP = 10, FLOP_LOG = 10, FLOP_SIN = 10, FLOP_COS = 10, FLOP_SQRT = 10 };

/* (m x n)(n x p) */
static double matmul(double m, double n, double p) { return m * p * (2.0 * n - 1.0); }

/* RMSNorm of `rows` rows of C: per element a square, the normalising multiply and the weight
 * multiply (3C); per row C - 1 adds for the sum, a divide by C (mean), + eps, a sqrt and one
 * reciprocal (13): 4C + 12 per row. */
static double rmsnorm(double rows, double C) { return rows * (4.0 * C + 12.0); }

/* Softmax of one row of n: n - 1 comparisons for the max, n subtractions, n exps, n - 1 adds,
 * n divides: 14n - 2. */
static double softmax_row(double n) { return (n - 1.0) + n + FLOP_EXP * n + (n - 1.0) + n; }

static int check_config(const ls_model_config *cfg, const ls_flops_lora *lora) {
    if (!cfg) return ls_error("flops: no model configuration");
    const struct {
        const char *name;
        int value;
    } dims[] = {{"vocab_size", cfg->vocab_size}, {"hidden_size", cfg->hidden},
                {"intermediate_size", cfg->intermediate}, {"num_hidden_layers", cfg->layers},
                {"num_attention_heads", cfg->heads}, {"num_key_value_heads", cfg->kv_heads},
                {"head_dim", cfg->head_dim}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].value <= 0) return ls_error("flops: %s is %d, expected > 0", dims[i].name, dims[i].value);
    if (cfg->heads % cfg->kv_heads != 0)
        return ls_error("flops: num_key_value_heads %d does not divide num_attention_heads %d", cfg->kv_heads,
                        cfg->heads);
    if (lora) {
        if (lora->rank < 0) return ls_error("flops: LoRA rank %d is negative", lora->rank);
        if (lora->targets >> LS_PROJ_COUNT)
            return ls_error("flops: LoRA targets 0x%x name projections beyond the %d known", lora->targets,
                            LS_PROJ_COUNT);
    }
    return LS_OK;
}

/* Positions 0 .. last must exist: last < max_positions when the config sets one. */
static int check_positions(const ls_model_config *cfg, double last, const char *what) {
    if (cfg->max_positions > 0 && last >= cfg->max_positions)
        return ls_error("flops: %s reaches position %.0f, past the model's %d positions", what, last,
                        cfg->max_positions);
    return LS_OK;
}

/* A chunk of Tq query tokens at consecutive positions, each attending to Tk keys; `masked`
 * applies the causal mask over the full Tq x Tk matrix. */
static void chunk(const ls_model_config *cfg, double Tq, double Tk, int masked, const ls_flops_lora *lora,
                  ls_flops_breakdown *out) {
    const double C = cfg->hidden, F = cfg->intermediate, L = cfg->layers, NH = cfg->heads,
                 KVH = cfg->kv_heads, hd = cfg->head_dim, V = cfg->vocab_size;
    double *op = out->op;
    for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) op[i] = 0.0;

    /* Per layer, multiplied by L below. */
    op[LS_FLOPS_ATTN_NORM] = rmsnorm(Tq, C);
    op[LS_FLOPS_Q_PROJ] = matmul(Tq, C, NH * hd);
    op[LS_FLOPS_K_PROJ] = matmul(Tq, C, KVH * hd);
    op[LS_FLOPS_V_PROJ] = matmul(Tq, C, KVH * hd);
    op[LS_FLOPS_QKV_BIAS] = Tq * (NH + 2.0 * KVH) * hd;
    /* out = x * cos + rotate_half(x) * sin: two multiplies and one add (or subtract) per element
     * of q and k; the sign of rotate_half folds into that add. */
    op[LS_FLOPS_ROPE] = 3.0 * Tq * (NH + KVH) * hd;
    /* Per query head: (Tq x hd)(hd x Tk), then every score is scaled, masked, softmaxed. */
    op[LS_FLOPS_SCORES] = NH * matmul(Tq, hd, Tk);
    op[LS_FLOPS_SCALE] = NH * Tq * Tk;
    op[LS_FLOPS_MASK] = masked ? NH * Tq * Tk : 0.0;
    op[LS_FLOPS_SOFTMAX] = NH * Tq * softmax_row(Tk);
    op[LS_FLOPS_ATTN_V] = NH * matmul(Tq, Tk, hd);
    op[LS_FLOPS_O_PROJ] = matmul(Tq, NH * hd, C);
    op[LS_FLOPS_ATTN_RESIDUAL] = Tq * C;
    op[LS_FLOPS_MLP_NORM] = rmsnorm(Tq, C);
    op[LS_FLOPS_GATE_PROJ] = matmul(Tq, C, F);
    op[LS_FLOPS_UP_PROJ] = matmul(Tq, C, F);
    /* silu(x) = x / (1 + exp(-x)) counted as x * sigmoid(x): exp, add, divide, multiply (13);
     * the negation is a sign flip. */
    op[LS_FLOPS_SILU] = Tq * F * (FLOP_EXP + 3.0);
    op[LS_FLOPS_GLU_MUL] = Tq * F;
    op[LS_FLOPS_DOWN_PROJ] = matmul(Tq, F, C);
    op[LS_FLOPS_MLP_RESIDUAL] = Tq * C;
    /* Per targeted projection (PEFT, unmerged): (x A^T) B^T, times the scale, added to the base
     * output. */
    if (lora && lora->rank > 0) {
        const double R = lora->rank;
        for (int p = 0; p < LS_PROJ_COUNT; p++) {
            if (!(lora->targets & (1u << p))) continue;
            int out_f, in_f;
            ls_proj_shape(cfg, (ls_proj)p, &out_f, &in_f);
            op[LS_FLOPS_LORA] += matmul(Tq, in_f, R) + matmul(Tq, R, out_f) + 2.0 * Tq * out_f;
        }
    }
    for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) op[i] *= L;

    /* Once per chunk: the sin/cos table of its Tq positions, shared by every layer and head.
     * Per position and frequency: angle = position * inv_freq (1), sin (10), cos (10). The
     * inverse frequencies theta^(-2i/hd), like 1/sqrt(hd) and 1/C, are constants of the model
     * computed once when it is loaded and not counted. */
    op[LS_FLOPS_ROPE_TABLE] = Tq * (hd / 2.0) * (1.0 + FLOP_SIN + FLOP_COS);
    op[LS_FLOPS_FINAL_NORM] = rmsnorm(Tq, C);
    op[LS_FLOPS_HEAD] = matmul(Tq, C, V);
    op[LS_FLOPS_HEAD_BIAS] = lora && lora->head_bias ? Tq * V : 0.0;

    out->total = 0.0;
    for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) out->total += op[i];
}

int ls_flops_forward(const ls_model_config *cfg, int T, const ls_flops_lora *lora, ls_flops_breakdown *out) {
    if (check_config(cfg, lora) != LS_OK) return LS_ERR;
    if (T < 1) return ls_error("flops: sequence length %d, expected >= 1", T);
    if (check_positions(cfg, (double)T - 1.0, "the sequence") != LS_OK) return LS_ERR;
    chunk(cfg, T, T, 1, lora, out);
    return LS_OK;
}

int ls_flops_forward_causal(const ls_model_config *cfg, int T, const ls_flops_lora *lora, ls_flops_breakdown *out) {
    if (check_config(cfg, lora) != LS_OK) return LS_ERR;
    if (T < 1) return ls_error("flops: sequence length %d, expected >= 1", T);
    if (check_positions(cfg, (double)T - 1.0, "the sequence") != LS_OK) return LS_ERR;
    chunk(cfg, T, T, 0, lora, out);
    /* Row i sees i + 1 keys: P = T (T + 1) / 2 (query, key) pairs in all, no mask. */
    const double L = cfg->layers, NH = cfg->heads, hd = cfg->head_dim, P = (double)T * (T + 1.0) / 2.0;
    double *op = out->op;
    op[LS_FLOPS_SCORES] = L * NH * P * (2.0 * hd - 1.0);
    op[LS_FLOPS_SCALE] = L * NH * P;
    op[LS_FLOPS_MASK] = 0.0;
    op[LS_FLOPS_SOFTMAX] = L * NH * (14.0 * P - 2.0 * T); /* sum over rows of softmax_row(i + 1) */
    op[LS_FLOPS_ATTN_V] = L * NH * hd * (2.0 * P - T);
    out->total = 0.0;
    for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) out->total += op[i];
    return LS_OK;
}

int ls_flops_decode_step(const ls_model_config *cfg, int position, const ls_flops_lora *lora,
                         ls_flops_breakdown *out) {
    if (check_config(cfg, lora) != LS_OK) return LS_ERR;
    if (position < 0) return ls_error("flops: decode position %d, expected >= 0", position);
    if (check_positions(cfg, position, "the decode step") != LS_OK) return LS_ERR;
    chunk(cfg, 1.0, (double)position + 1.0, 0, lora, out);
    return LS_OK;
}

/* Per position: log-softmax of the V logits and the target's negative log-probability:
 * max (V - 1), subtract (V), exp (10V), sum (V - 1), log (10), log(sum) - shifted target (1);
 * then one add (or, once per batch, the final divide) for the mean over the B x T positions:
 * 13V + 10 per position. */
int ls_flops_loss(const ls_model_config *cfg, int T, double *out) {
    if (check_config(cfg, NULL) != LS_OK) return LS_ERR;
    if (T < 1) return ls_error("flops: sequence length %d, expected >= 1", T);
    const double V = cfg->vocab_size;
    *out = (double)T * ((V - 1.0) + V + FLOP_EXP * V + (V - 1.0) + FLOP_LOG + 1.0 + 1.0);
    return LS_OK;
}

int ls_flops_train_step(const ls_model_config *cfg, int T, int B, const ls_flops_lora *lora, double *out) {
    if (B < 1) return ls_error("flops: batch size %d, expected >= 1", B);
    ls_flops_breakdown fwd;
    double loss = 0;
    if (ls_flops_forward(cfg, T, lora, &fwd) != LS_OK || ls_flops_loss(cfg, T, &loss) != LS_OK) return LS_ERR;
    *out = 3.0 * (double)B * (fwd.total + loss);
    return LS_OK;
}

int ls_flops_train_total(const ls_model_config *cfg, int T, int B, long steps, const ls_flops_lora *lora,
                         double *out) {
    if (steps < 0) return ls_error("flops: %ld training steps, expected >= 0", steps);
    double step;
    if (ls_flops_train_step(cfg, T, B, lora, &step) != LS_OK) return LS_ERR;
    *out = (double)steps * step;
    return LS_OK;
}

int ls_flops_generate(const ls_model_config *cfg, const ls_flops_lora *lora, int prompt_len, int new_tokens,
                      int samples, ls_flops_gen *out) {
    if (check_config(cfg, lora) != LS_OK) return LS_ERR;
    if (prompt_len < 1) return ls_error("flops: prompt of %d tokens, expected >= 1", prompt_len);
    if (new_tokens < 1) return ls_error("flops: %d new tokens, expected >= 1", new_tokens);
    if (samples < 1) return ls_error("flops: %d samples, expected >= 1", samples);
    /* The last decode step feeds new token new_tokens - 1 at position prompt_len + new_tokens - 2. */
    if (check_positions(cfg, (double)prompt_len + new_tokens - 2.0, "generation") != LS_OK) return LS_ERR;
    ls_flops_gen g = {0};
    ls_flops_breakdown b;
    chunk(cfg, prompt_len, prompt_len, 1, lora, &b);
    g.prefill = b.total;
    for (int j = 0; j < new_tokens - 1; j++) {
        chunk(cfg, 1.0, (double)prompt_len + j + 1.0, 0, lora, &b);
        g.decode += b.total;
    }
    /* Per new token: logits / temperature (V), softmax (14V - 2), inverse-CDF draw: running sum
     * (V - 1) and comparisons (V). The uniform random number is integer work, not counted. */
    const double V = cfg->vocab_size;
    g.sampling = (double)new_tokens * (V + softmax_row(V) + (V - 1.0) + V);
    g.total = (double)samples * (g.prefill + g.decode + g.sampling);
    *out = g;
    return LS_OK;
}
