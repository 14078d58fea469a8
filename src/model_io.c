/*
 * model_io.c: the model's files: config.json, the frozen weights (one safetensors file or
 * shards), built-in configurations, and LoRA adapters in PEFT's layout. docs/model.md describes
 * the files; include/lorasweep/model.h the structures.
 *
 * Design decisions:
 *  - One size table (ls_model_tensors) says, for a config, every checkpoint tensor's name, shape
 *    and place in the arena. Allocation points the struct into one fp32 block from it (llm.c's
 *    malloc_and_point_parameters); loading walks the same table. Nothing else knows the layout.
 *  - Loading checks before it allocates: every needed tensor is located and its shape and dtype
 *    checked against the config first, so a wrong checkpoint fails in milliseconds with a message
 *    naming the tensor, expected and found shape, and never after converting a gigabyte.
 *  - config.json is read as Hugging Face's Qwen2Config would read it: the five sizes that define
 *    the architecture are required; num_key_value_heads, rms_norm_eps, rope_theta,
 *    max_position_embeddings and tie_word_embeddings take Qwen2Config's defaults when absent.
 *    Features this code does not implement (sliding-window attention, rope scaling, another
 *    activation or head_dim) are refused rather than silently computed differently. RoPE's theta
 *    is read from rope_theta or from transformers 5's rope_parameters (parse_rope).
 *  - Extra tensors in a checkpoint are ignored (an untied lm_head.weight beside a tied config, a
 *    rotary buffer); extra tensors in an adapter are an error, since dropping trained weights
 *    silently would be worse than refusing.
 *  - An adapter's parameters live in one block in a fixed order (layer-major, projections in
 *    ls_proj order, A then B, the head bias last) so an optimiser walks one array. Its A matrices
 *    are drawn as PEFT draws them, uniform in +-1/sqrt(in) (kaiming_uniform_ with a = sqrt(5)),
 *    from mt19937 (GSL) seeded with the 64-bit seed folded to 32 bits, in that order.
 *  - Every file is written to "<path>.tmp<pid>" and renamed, so a failed save leaves the old one.
 */
#include "lorasweep/model.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "lorasweep/common.h"
#include "lorasweep/safetensors.h"

const char *const ls_proj_names[LS_PROJ_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                  "gate_proj", "up_proj", "down_proj"};

/* Sanity caps for config.json: far above any Qwen2 model, low enough that sizes cannot overflow. */
#define MAX_VOCAB (1 << 24)
#define MAX_HIDDEN (1 << 16)
#define MAX_INTERMEDIATE (1 << 18)
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_POSITIONS (1 << 24)
#define MAX_PARAMS ((size_t)1 << 36)
#define MAX_RANK 65536

void ls_proj_shape(const ls_model_config *cfg, ls_proj p, int *out_features, int *in_features) {
    int C = cfg->hidden, F = cfg->intermediate, QD = cfg->heads * cfg->head_dim, KD = cfg->kv_heads * cfg->head_dim;
    switch (p) {
    case LS_PROJ_Q: *out_features = QD, *in_features = C; break;
    case LS_PROJ_K:
    case LS_PROJ_V: *out_features = KD, *in_features = C; break;
    case LS_PROJ_O: *out_features = C, *in_features = QD; break;
    case LS_PROJ_GATE:
    case LS_PROJ_UP: *out_features = F, *in_features = C; break;
    case LS_PROJ_DOWN: *out_features = C, *in_features = F; break;
    default: *out_features = *in_features = 0; break;
    }
}

/* ---------------------------------------------------------------- small helpers */

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = ls_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}



/* The shortest decimal that reads back as the same float (so 1e-6f prints as 1e-06, not
 * 9.99999997e-07) as a cJSON number. */
static cJSON *float_number(float f) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}


/* ---------------------------------------------------------------- config.json */

/* Read an integer key into *out; absent keys take def when !required. */
static int json_int(const cJSON *root, const char *key, int required, long def, long min, long max, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return ls_error("missing key '%s'", key);
        *out = (int)def;
        return LS_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e15)
        return ls_error("'%s' is not an integer", key);
    if (v->valuedouble < (double)min || v->valuedouble > (double)max)
        return ls_error("'%s' is %.0f, outside [%ld, %ld]", key, v->valuedouble, min, max);
    *out = (int)v->valuedouble;
    return LS_OK;
}

static int json_float(const cJSON *root, const char *key, double def, double min_excl, double max, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = (float)def;
        return LS_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return ls_error("'%s' is not a number", key);
    if (!(v->valuedouble > min_excl && v->valuedouble <= max))
        return ls_error("'%s' is %g, outside (%g, %g]", key, v->valuedouble, min_excl, max);
    *out = (float)v->valuedouble;
    return LS_OK;
}

/* A token id key: an integer, a list of integers (the first counts) or absent/null (-1). */
static int json_token_id(const cJSON *root, const char *key, int vocab, int32_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = -1;
    if (cJSON_IsArray(v)) v = v->child;
    if (!v || cJSON_IsNull(v)) return LS_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble >= vocab)
        return ls_error("'%s' is not a token id below vocab_size %d", key, vocab);
    *out = (int32_t)v->valuedouble;
    return LS_OK;
}

static int json_bool(const cJSON *root, const char *key, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) *out = def;
    else if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v);
    else return ls_error("'%s' is not true or false", key);
    return LS_OK;
}

/* The rotary embedding: plain RoPE with one theta is all this code computes. Older configs give
 * it as top-level rope_theta (default 10000, as Qwen2Config); newer ones (transformers 5) as
 * rope_parameters {"rope_type": "default", "rope_theta": ...}. Either or both are accepted when
 * they agree; anything that would rotate differently (another rope_type, a partial rotary factor,
 * a key this code does not know, a non-null rope_scaling) is refused with one line, never
 * computed as plain RoPE. */
static int parse_rope(const cJSON *root, float *theta) {
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (scaling && !cJSON_IsNull(scaling)) return ls_error("rope_scaling is not supported");
    float top = 0, inner = 0;
    const cJSON *top_v = cJSON_GetObjectItemCaseSensitive(root, "rope_theta");
    if (json_float(root, "rope_theta", 10000.0, 0, 1e12, &top) != LS_OK) return LS_ERR;
    *theta = top;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters"), *e;
    if (!rp || cJSON_IsNull(rp)) return LS_OK;
    if (!cJSON_IsObject(rp)) return ls_error("rope_parameters is not an object");
    char sb[64];
    cJSON_ArrayForEach(e, rp) {
        const char *k = e->string;
        if (strcmp(k, "rope_type") == 0 || strcmp(k, "type") == 0) { /* "type": the older spelling */
            if (!cJSON_IsString(e)) return ls_error("rope_parameters.%s is not a string", k);
            if (strcmp(e->valuestring, "default") != 0)
                return ls_error("rope_parameters.%s '%s' is not supported (only \"default\" RoPE)", k,
                                ls_printable(e->valuestring, sb, sizeof sb));
        } else if (strcmp(k, "partial_rotary_factor") == 0) {
            if (!cJSON_IsNumber(e) || e->valuedouble != 1.0)
                return ls_error("rope_parameters.partial_rotary_factor other than 1 is not supported");
        } else if (strcmp(k, "rope_theta") != 0) {
            return ls_error("rope_parameters.%s is not understood (only rope_type \"default\" and rope_theta are)",
                            ls_printable(k, sb, sizeof sb));
        }
    }
    const cJSON *inner_v = cJSON_GetObjectItemCaseSensitive(rp, "rope_theta");
    if (!inner_v || cJSON_IsNull(inner_v)) return LS_OK;
    if (json_float(rp, "rope_theta", 10000.0, 0, 1e12, &inner) != LS_OK) return ls_error_prefix("rope_parameters");
    if (top_v && !cJSON_IsNull(top_v) && top_v->valuedouble != inner_v->valuedouble)
        return ls_error("rope_theta %g and rope_parameters.rope_theta %g differ", top_v->valuedouble,
                        inner_v->valuedouble);
    *theta = inner;
    return LS_OK;
}

static int parse_config(const cJSON *root, ls_model_config *c) {
    if (!cJSON_IsObject(root)) return ls_error("not a JSON object");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures"), *a;
    int qwen2 = cJSON_IsString(type) && strcmp(type->valuestring, "qwen2") == 0;
    if (cJSON_IsArray(arch))
        cJSON_ArrayForEach(a, arch) qwen2 |= cJSON_IsString(a) && strcmp(a->valuestring, "Qwen2ForCausalLM") == 0;
    char sb[64];
    if (!qwen2) {
        if (cJSON_IsString(type)) return ls_error("model_type '%s' is not qwen2", ls_printable(type->valuestring, sb, sizeof sb));
        return ls_error("neither model_type qwen2 nor architectures Qwen2ForCausalLM");
    }
    if (json_int(root, "hidden_size", 1, 0, 1, MAX_HIDDEN, &c->hidden) != LS_OK ||
        json_int(root, "intermediate_size", 1, 0, 1, MAX_INTERMEDIATE, &c->intermediate) != LS_OK ||
        json_int(root, "num_hidden_layers", 1, 0, 1, MAX_LAYERS, &c->layers) != LS_OK ||
        json_int(root, "num_attention_heads", 1, 0, 1, MAX_HEADS, &c->heads) != LS_OK ||
        json_int(root, "vocab_size", 1, 0, 1, MAX_VOCAB, &c->vocab_size) != LS_OK ||
        json_int(root, "num_key_value_heads", 0, c->heads, 1, MAX_HEADS, &c->kv_heads) != LS_OK ||
        json_int(root, "max_position_embeddings", 0, 32768, 1, MAX_POSITIONS, &c->max_positions) != LS_OK ||
        json_float(root, "rms_norm_eps", 1e-6, 0, 1, &c->rms_eps) != LS_OK ||
        json_bool(root, "tie_word_embeddings", 0, &c->tie_embeddings) != LS_OK ||
        json_token_id(root, "bos_token_id", c->vocab_size, &c->bos_id) != LS_OK ||
        json_token_id(root, "eos_token_id", c->vocab_size, &c->eos_id) != LS_OK)
        return LS_ERR;
    if (c->hidden % c->heads != 0)
        return ls_error("hidden_size %d is not a multiple of num_attention_heads %d", c->hidden, c->heads);
    if (c->heads % c->kv_heads != 0)
        return ls_error("num_attention_heads %d is not a multiple of num_key_value_heads %d", c->heads, c->kv_heads);
    c->head_dim = c->hidden / c->heads;
    if (c->head_dim % 2 != 0) return ls_error("head dimension %d is odd (rotary embedding needs pairs)", c->head_dim);
    int head_dim = c->head_dim, sliding = 0;
    if (json_int(root, "head_dim", 0, c->head_dim, 1, MAX_HIDDEN, &head_dim) != LS_OK) return LS_ERR;
    if (head_dim != c->head_dim)
        return ls_error("head_dim %d differs from hidden_size / num_attention_heads = %d (not supported)", head_dim,
                        c->head_dim);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0))
        return ls_error("hidden_act is not \"silu\" (not supported)");
    if (json_bool(root, "use_sliding_window", 0, &sliding) != LS_OK) return LS_ERR;
    if (sliding) return ls_error("use_sliding_window true is not supported");
    if (parse_rope(root, &c->rope_theta) != LS_OK) return LS_ERR;
    if (ls_model_n_params(c) > MAX_PARAMS)
        return ls_error("the model would have %zu parameters, above the limit of %zu", ls_model_n_params(c), MAX_PARAMS);
    return LS_OK;
}

int ls_model_config_load(const char *path, ls_model_config *out) {
    memset(out, 0, sizeof *out);
    size_t len;
    char *text = ls_read_file(path, &len);
    if (!text) return LS_ERR;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = root ? parse_config(root, out) : ls_error("not valid JSON");
    cJSON_Delete(root);
    if (rc != LS_OK) {
        memset(out, 0, sizeof *out);
        return ls_error_prefix("%s", path);
    }
    return LS_OK;
}

int ls_model_config_preset(const char *name, ls_model_config *out) {
    ls_model_config c = {.vocab_size = 151936, .max_positions = 32768, .rms_eps = 1e-6f, .tie_embeddings = 1,
                         .bos_id = 151643, .eos_id = 151645};
    if (strcmp(name, "tiny") == 0) {
        c.hidden = 64, c.intermediate = 160, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.rope_theta = 10000.0f;
    } else if (strcmp(name, "small") == 0) {
        c.hidden = 256, c.intermediate = 704, c.layers = 4, c.heads = 4, c.kv_heads = 2, c.rope_theta = 10000.0f;
    } else if (strcmp(name, "qwen2.5-0.5b") == 0) {
        c.hidden = 896, c.intermediate = 4864, c.layers = 24, c.heads = 14, c.kv_heads = 2, c.rope_theta = 1e6f;
    } else {
        return ls_error("unknown preset '%s' (tiny, small or qwen2.5-0.5b)", name);
    }
    c.head_dim = c.hidden / c.heads;
    *out = c;
    return LS_OK;
}

int ls_model_config_save(const char *path, const ls_model_config *c) {
    cJSON *root = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("Qwen2ForCausalLM"));
    cJSON_AddNumberToObject(root, "attention_dropout", 0.0);
    if (c->bos_id >= 0) cJSON_AddNumberToObject(root, "bos_token_id", c->bos_id);
    if (c->eos_id >= 0) cJSON_AddNumberToObject(root, "eos_token_id", c->eos_id);
    cJSON_AddStringToObject(root, "hidden_act", "silu");
    cJSON_AddNumberToObject(root, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(root, "initializer_range", 0.02);
    cJSON_AddNumberToObject(root, "intermediate_size", c->intermediate);
    cJSON_AddNumberToObject(root, "max_position_embeddings", c->max_positions);
    cJSON_AddNumberToObject(root, "max_window_layers", 21);
    cJSON_AddStringToObject(root, "model_type", "qwen2");
    cJSON_AddNumberToObject(root, "num_attention_heads", c->heads);
    cJSON_AddNumberToObject(root, "num_hidden_layers", c->layers);
    cJSON_AddNumberToObject(root, "num_key_value_heads", c->kv_heads);
    cJSON_AddItemToObject(root, "rms_norm_eps", float_number(c->rms_eps));
    cJSON_AddItemToObject(root, "rope_theta", float_number(c->rope_theta));
    cJSON_AddNumberToObject(root, "sliding_window", c->max_positions);
    cJSON_AddBoolToObject(root, "tie_word_embeddings", c->tie_embeddings != 0);
    cJSON_AddStringToObject(root, "torch_dtype", "bfloat16");
    cJSON_AddBoolToObject(root, "use_cache", 1);
    cJSON_AddBoolToObject(root, "use_sliding_window", 0);
    cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    size_t n = strlen(text);
    text = ls_realloc(text, n + 2);
    memcpy(text + n, "\n", 2);
    int rc = ls_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- the size table */

int ls_model_tensors(const ls_model_config *c, ls_model_tensor *list) {
    size_t V = (size_t)c->vocab_size, C = (size_t)c->hidden, F = (size_t)c->intermediate;
    size_t QD = (size_t)c->heads * (size_t)c->head_dim, KD = (size_t)c->kv_heads * (size_t)c->head_dim;
    static const char *const layer_names[12] = {
        "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
        "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
        "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"};
    const size_t layer_shapes[12][2] = {{C, 0},  {QD, C}, {QD, 0}, {KD, C}, {KD, 0}, {KD, C},
                                        {KD, 0}, {C, QD}, {C, 0},  {F, C},  {F, C},  {C, F}};
    int n = 0;
    size_t at = 0;
#define ADD(...)                                                                                 \
    do {                                                                                         \
        if (list) {                                                                              \
            ls_model_tensor *t = &list[n];                                                       \
            snprintf(t->name, sizeof t->name, __VA_ARGS__);                                      \
            t->shape[0] = (int64_t)d0, t->shape[1] = (int64_t)d1, t->rank = d1 ? 2 : 1;          \
            t->offset = at, t->numel = d0 * (d1 ? d1 : 1);                                       \
        }                                                                                        \
        at += d0 * (d1 ? d1 : 1);                                                                \
        n++;                                                                                     \
    } while (0)
    size_t d0 = V, d1 = C;
    ADD("model.embed_tokens.weight");
    d0 = C, d1 = 0;
    ADD("model.norm.weight");
    for (int l = 0; l < c->layers; l++)
        for (int k = 0; k < 12; k++) {
            d0 = layer_shapes[k][0], d1 = layer_shapes[k][1];
            ADD("model.layers.%d.%s", l, layer_names[k]);
        }
    if (!c->tie_embeddings) {
        d0 = V, d1 = C;
        ADD("lm_head.weight");
    }
#undef ADD
    return n;
}

size_t ls_model_n_params(const ls_model_config *c) {
    size_t V = (size_t)c->vocab_size, C = (size_t)c->hidden, F = (size_t)c->intermediate;
    size_t QD = (size_t)c->heads * (size_t)c->head_dim, KD = (size_t)c->kv_heads * (size_t)c->head_dim;
    size_t per_layer = 2 * C + QD * C + QD + 2 * (KD * C + KD) + C * QD + 3 * F * C;
    return V * C * (c->tie_embeddings ? 1 : 2) + C + per_layer * (size_t)c->layers;
}

/* Point m's fields at the arena per the size table. */
static void point_model(ls_model *m, const ls_model_tensor *list) {
    float *base = m->arena;
    int i = 0;
    m->embed = base + list[i++].offset;
    m->final_norm = base + list[i++].offset;
    for (int l = 0; l < m->cfg.layers; l++) {
        ls_layer_weights *w = &m->layer[l];
        float **fields[12] = {&w->attn_norm, &w->wq,       &w->bq,    &w->wk,  &w->bk,  &w->wv,
                              &w->bv,        &w->wo,       &w->mlp_norm, &w->wgate, &w->wup, &w->wdown};
        for (int k = 0; k < 12; k++) *fields[k] = base + list[i++].offset;
    }
    m->lm_head = m->cfg.tie_embeddings ? m->embed : base + list[i++].offset;
}

void ls_model_alloc(ls_model *m, const ls_model_config *cfg) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    int n = ls_model_tensors(cfg, NULL);
    ls_model_tensor *list = ls_malloc((size_t)n * sizeof *list);
    ls_model_tensors(cfg, list);
    m->arena_floats = list[n - 1].offset + list[n - 1].numel;
    m->arena = ls_calloc(m->arena_floats, sizeof(float));
    m->layer = ls_calloc((size_t)cfg->layers, sizeof *m->layer);
    point_model(m, list);
    free(list);
}

void ls_model_free(ls_model *m) {
    free(m->arena);
    free(m->layer);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- checkpoints */

/* The weight files of a checkpoint: one model.safetensors, or the shards an index names. */
typedef struct {
    char *dir;
    char *index_path;        /* NULL for a single file */
    cJSON *weight_map;       /* name -> shard file, from the index */
    int n_files;
    char **file_names;       /* (n_files) */
    ls_safetensors *files;   /* (n_files) opened lazily: name == NULL until then */
} checkpoint;

static void checkpoint_close(checkpoint *ck) {
    for (int i = 0; i < ck->n_files; i++) {
        if (ck->files[i].name) ls_safetensors_close(&ck->files[i]);
        free(ck->file_names[i]);
    }
    free(ck->files);
    free(ck->file_names);
    free(ck->index_path);
    free(ck->dir);
    memset(ck, 0, sizeof *ck);
}

static int add_file(checkpoint *ck, const char *name) {
    for (int i = 0; i < ck->n_files; i++)
        if (strcmp(ck->file_names[i], name) == 0) return i;
    ck->file_names = ls_realloc(ck->file_names, (size_t)(ck->n_files + 1) * sizeof *ck->file_names);
    ck->files = ls_realloc(ck->files, (size_t)(ck->n_files + 1) * sizeof *ck->files);
    ck->file_names[ck->n_files] = ls_strdup(name);
    memset(&ck->files[ck->n_files], 0, sizeof *ck->files);
    return ck->n_files++;
}

/* A shard name must be a plain file name in the checkpoint directory. */
static int plain_file_name(const char *s) {
    return s[0] && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/');
}

static int checkpoint_open(const char *dir, checkpoint *ck, cJSON **index_root) {
    memset(ck, 0, sizeof *ck);
    *index_root = NULL;
    ck->dir = ls_strdup(dir);
    char *single = path_join(dir, "model.safetensors");
    if (file_exists(single)) {
        add_file(ck, "model.safetensors");
        free(single);
        return LS_OK;
    }
    free(single);
    ck->index_path = path_join(dir, "model.safetensors.index.json");
    if (!file_exists(ck->index_path))
        return ls_error("%s: neither model.safetensors nor model.safetensors.index.json is there", dir);
    size_t len;
    char *text = ls_read_file(ck->index_path, &len);
    if (!text) return LS_ERR;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    *index_root = root;
    if (!root) return ls_error("%s: not valid JSON", ck->index_path);
    ck->weight_map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(ck->weight_map)) return ls_error("%s: no \"weight_map\" object", ck->index_path);
    const cJSON *e;
    char nb[96];
    cJSON_ArrayForEach(e, ck->weight_map) {
        if (!cJSON_IsString(e) || !plain_file_name(e->valuestring))
            return ls_error("%s: weight_map entry '%s' is not a file name in the directory", ck->index_path,
                            ls_printable(e->string, nb, sizeof nb));
    }
    return LS_OK;
}

/* Find a tensor: the file it is in (opened on first use) and its entry. Messages name the file. */
static int checkpoint_find(checkpoint *ck, const char *name, const ls_safetensors **file, const ls_st_tensor **t) {
    int fi = 0;
    if (ck->weight_map) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(ck->weight_map, name);
        if (!e) return ls_error("%s: tensor '%s' is missing from weight_map", ck->index_path, name);
        fi = add_file(ck, e->valuestring);
    }
    ls_safetensors *st = &ck->files[fi];
    if (!st->name) {
        char *path = path_join(ck->dir, ck->file_names[fi]);
        int rc = ls_safetensors_open(path, st);
        free(path);
        if (rc != LS_OK) return LS_ERR;
    }
    *file = st;
    *t = ls_safetensors_find(st, name);
    if (!*t) {
        if (ck->weight_map)
            return ls_error("%s: tensor '%s' is missing (the index places it in this file)", st->name, name);
        return ls_error("%s: tensor '%s' is missing", st->name, name);
    }
    return LS_OK;
}

/* Check that a file tensor has the expected shape and converts to float32. */
static int check_tensor(const ls_safetensors *st, const ls_st_tensor *t, int rank, const int64_t *shape) {
    int same = t->rank == rank;
    for (int k = 0; same && k < rank; k++) same = t->shape[k] == shape[k];
    if (!same) {
        char want[64], got[256];
        ls_st_shape_str(want, sizeof want, rank, shape);
        ls_st_shape_str(got, sizeof got, t->rank, t->shape);
        return ls_error("%s: tensor '%s' has shape %s, expected %s", st->name, t->name, got, want);
    }
    if (t->dtype != LS_ST_F32 && t->dtype != LS_ST_BF16 && t->dtype != LS_ST_F16 && t->dtype != LS_ST_F64)
        return ls_error("%s: tensor '%s' is %s, not a floating-point type", st->name, t->name,
                        ls_st_dtype_name(t->dtype));
    return LS_OK;
}

int ls_model_check_tokenizer(const ls_model_config *cfg, int n_ids, const char *tok_path) {
    if (n_ids <= cfg->vocab_size) return LS_OK;
    return ls_error("%s: token ids go up to %d, beyond the model's vocabulary of %d (its embedding has no row for "
                    "them): use the tokenizer that came with the model", tok_path, n_ids - 1, cfg->vocab_size);
}

int ls_model_load(const char *dir, ls_model *out) {
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return ls_error("%s: %s", dir, errno == ENOENT ? "no such model directory" : strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return ls_error("%s: not a model directory", dir);
    ls_model_config cfg;
    char *cfg_path = path_join(dir, "config.json");
    int rc = ls_model_config_load(cfg_path, &cfg);
    free(cfg_path);
    if (rc != LS_OK) return LS_ERR;

    checkpoint ck;
    cJSON *index_root;
    rc = checkpoint_open(dir, &ck, &index_root);
    int n = ls_model_tensors(&cfg, NULL);
    ls_model_tensor *list = ls_malloc((size_t)n * sizeof *list);
    ls_model_tensors(&cfg, list);
    const ls_safetensors **files = ls_calloc((size_t)n, sizeof *files);
    const ls_st_tensor **found = ls_calloc((size_t)n, sizeof *found);
    /* pass 1: locate and check everything */
    for (int i = 0; rc == LS_OK && i < n; i++) {
        rc = checkpoint_find(&ck, list[i].name, &files[i], &found[i]);
        if (rc == LS_OK) rc = check_tensor(files[i], found[i], list[i].rank, list[i].shape);
    }
    /* pass 2: convert into the arena */
    if (rc == LS_OK) {
        ls_model_alloc(out, &cfg);
        for (int i = 0; rc == LS_OK && i < n; i++)
            rc = ls_safetensors_read_f32(files[i], found[i], out->arena + list[i].offset);
        if (rc != LS_OK) ls_model_free(out);
    }
    free(files);
    free(found);
    free(list);
    checkpoint_close(&ck);
    cJSON_Delete(index_root);
    return rc;
}

/* What the checkpoint's files are now: config.json, model.safetensors, the index and every other
 * *.safetensors file of dir (shards), each by name, device, inode, size, and modification and
 * change times to the nanosecond, hashed (FNV-1a, names sorted). A file rewritten in place
 * changes its times, one replaced by a rename its inode: either changes the fingerprint. */
static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void fnv(uint64_t *h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) *h = (*h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
}

int ls_model_fingerprint(const char *dir, uint64_t *out) {
    DIR *d = opendir(dir);
    if (!d) return ls_error("%s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        int wanted = !strcmp(e->d_name, "config.json") || !strcmp(e->d_name, "model.safetensors.index.json") ||
                     (len > 12 && !strcmp(e->d_name + len - 12, ".safetensors"));
        if (!wanted) continue;
        if (n == cap) names = ls_realloc(names, sizeof *names * (cap = 2 * cap + 8));
        names[n++] = ls_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    uint64_t h = 0xcbf29ce484222325ull;
    int rc = LS_OK;
    for (size_t i = 0; i < n; i++) {
        char *path = path_join(dir, names[i]);
        struct stat sb;
        if (rc == LS_OK && stat(path, &sb) != 0) rc = ls_error("%s: %s", path, strerror(errno));
        if (rc == LS_OK) {
            int64_t f[8] = {(int64_t)sb.st_dev, (int64_t)sb.st_ino, (int64_t)sb.st_size, (int64_t)sb.st_mtim.tv_sec,
                            (int64_t)sb.st_mtim.tv_nsec, (int64_t)sb.st_ctim.tv_sec, (int64_t)sb.st_ctim.tv_nsec, 0};
            fnv(&h, names[i], strlen(names[i]) + 1);
            fnv(&h, f, sizeof f);
        }
        free(path);
        free(names[i]);
    }
    free(names);
    if (rc == LS_OK) *out = h;
    return rc;
}

/* ---------------------------------------------------------------- LoRA adapters */

void ls_lora_tensor_name(char *buf, size_t cap, int layer, ls_proj p, int is_b) {
    snprintf(buf, cap, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", layer,
             p <= LS_PROJ_O ? "self_attn" : "mlp", ls_proj_names[p], is_b ? 'B' : 'A');
}

static void lora_check_fatal(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "lorasweep: ls_lora_init: %s\n", what);
        abort();
    }
}

void ls_lora_init(ls_lora *lora, const ls_model_config *cfg, int rank, float alpha, unsigned targets, int head_bias) {
    /* programming errors, not data errors: callers check user input before */
    lora_check_fatal(rank >= 1 && rank <= MAX_RANK, "rank out of range");
    lora_check_fatal(targets < (1u << LS_PROJ_COUNT), "unknown target bits");
    memset(lora, 0, sizeof *lora);
    lora->rank = rank;
    lora->alpha = alpha;
    lora->scale = alpha / (float)rank;
    lora->targets = targets;
    lora->head_bias = head_bias != 0;
    lora->layers = cfg->layers;
    lora->pair = ls_calloc((size_t)cfg->layers * LS_PROJ_COUNT, sizeof *lora->pair);
    size_t total = 0, R = (size_t)rank;
    for (int l = 0; l < cfg->layers; l++)
        for (int p = 0; p < LS_PROJ_COUNT; p++) {
            if (!(targets & (1u << p))) continue;
            int out_f, in_f;
            ls_proj_shape(cfg, (ls_proj)p, &out_f, &in_f);
            total += R * (size_t)in_f + (size_t)out_f * R;
        }
    if (lora->head_bias) total += (size_t)cfg->vocab_size;
    lora->arena_floats = total;
    lora->arena = ls_calloc(total ? total : 1, sizeof(float));
    float *at = lora->arena;
    for (int l = 0; l < cfg->layers; l++)
        for (int p = 0; p < LS_PROJ_COUNT; p++) {
            if (!(targets & (1u << p))) continue;
            int out_f, in_f;
            ls_proj_shape(cfg, (ls_proj)p, &out_f, &in_f);
            ls_lora_pair *pair = &lora->pair[l * LS_PROJ_COUNT + p];
            pair->a = at, at += R * (size_t)in_f;
            pair->b = at, at += (size_t)out_f * R;
        }
    if (lora->head_bias) lora->lm_head_bias = at;
}

void ls_lora_reset(ls_lora *lora, const ls_model_config *cfg, uint64_t seed) {
    memset(lora->arena, 0, lora->arena_floats * sizeof(float));
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    lora_check_fatal(r != NULL, "out of memory for the random number generator");
    gsl_rng_set(r, (unsigned long)((seed ^ (seed >> 32)) & 0xffffffffu));
    for (int l = 0; l < lora->layers; l++)
        for (int p = 0; p < LS_PROJ_COUNT; p++) {
            if (!(lora->targets & (1u << p))) continue;
            int out_f, in_f;
            ls_proj_shape(cfg, (ls_proj)p, &out_f, &in_f);
            double bound = 1.0 / sqrt((double)in_f);
            float *a = lora->pair[l * LS_PROJ_COUNT + p].a;
            for (size_t i = 0; i < (size_t)lora->rank * (size_t)in_f; i++)
                a[i] = (float)(bound * (2.0 * gsl_rng_uniform(r) - 1.0));
        }
    gsl_rng_free(r);
}

void ls_lora_like(ls_lora *dst, const ls_lora *src, const ls_model_config *cfg) {
    lora_check_fatal(src->layers == cfg->layers, "ls_lora_like: adapter and config differ in layers");
    ls_lora_init(dst, cfg, src->rank, src->alpha, src->targets, src->head_bias);
    dst->scale = src->scale;
}

void ls_lora_free(ls_lora *lora) {
    free(lora->arena);
    free(lora->pair);
    memset(lora, 0, sizeof *lora);
}

/* adapter_config.json: the fields we support, refusing what we do not implement. */
static int parse_adapter_config(const cJSON *root, int *rank, float *alpha, unsigned *targets) {
    if (!cJSON_IsObject(root)) return ls_error("not a JSON object");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (v && !(cJSON_IsString(v) && strcmp(v->valuestring, "LORA") == 0)) return ls_error("peft_type is not \"LORA\"");
    if (json_int(root, "r", 1, 0, 1, MAX_RANK, rank) != LS_OK) return LS_ERR;
    v = cJSON_GetObjectItemCaseSensitive(root, "lora_alpha");
    if (!v) return ls_error("missing key 'lora_alpha'");
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble <= 0 || v->valuedouble > 1e6)
        return ls_error("'lora_alpha' is not a positive number");
    *alpha = (float)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    if (!v) return ls_error("missing key 'target_modules'");
    if (!cJSON_IsArray(v)) return ls_error("target_modules is not a list of projection names (patterns are not supported)");
    *targets = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        int p = 0;
        while (p < LS_PROJ_COUNT && !(cJSON_IsString(e) && strcmp(e->valuestring, ls_proj_names[p]) == 0)) p++;
        char nb[64];
        if (p == LS_PROJ_COUNT)
            return ls_error("target_modules: '%s' is not one of q_proj k_proj v_proj o_proj gate_proj up_proj down_proj",
                            cJSON_IsString(e) ? ls_printable(e->valuestring, nb, sizeof nb) : "(not a string)");
        *targets |= 1u << p;
    }
    if (*targets == 0) return ls_error("target_modules is empty");
    static const char *const off[] = {"use_rslora", "use_dora", "fan_in_fan_out"};
    for (int i = 0; i < 3; i++) {
        int on = 0;
        if (json_bool(root, off[i], 0, &on) != LS_OK) return LS_ERR;
        if (on) return ls_error("%s true is not supported", off[i]);
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "bias");
    if (v && !(cJSON_IsString(v) && strcmp(v->valuestring, "none") == 0)) return ls_error("bias other than \"none\" is not supported");
    static const char *const empty[] = {"layers_to_transform", "rank_pattern", "alpha_pattern", "modules_to_save"};
    for (int i = 0; i < 4; i++) {
        v = cJSON_GetObjectItemCaseSensitive(root, empty[i]);
        if (v && !cJSON_IsNull(v) && !((cJSON_IsArray(v) || cJSON_IsObject(v)) && !v->child))
            return ls_error("%s is not supported", empty[i]);
    }
    return LS_OK;
}

/* Read one tensor of an adapter file into dst after checking its shape. */
static int read_checked(const ls_safetensors *st, const char *name, int rank, const int64_t *shape, float *dst) {
    const ls_st_tensor *t = ls_safetensors_find(st, name);
    if (!t) return ls_error("%s: tensor '%s' is missing", st->name, name);
    if (check_tensor(st, t, rank, shape) != LS_OK) return LS_ERR;
    return ls_safetensors_read_f32(st, t, dst);
}

int ls_lora_load(const char *dir, const ls_model_config *cfg, ls_lora *out) {
    memset(out, 0, sizeof *out);
    char *cfg_path = path_join(dir, "adapter_config.json");
    size_t len;
    char *text = ls_read_file(cfg_path, &len);
    int rank = 0, rc = text ? LS_OK : LS_ERR;
    float alpha = 0;
    unsigned targets = 0;
    if (text) {
        cJSON *root = cJSON_ParseWithLength(text, len);
        rc = root ? parse_adapter_config(root, &rank, &alpha, &targets) : ls_error("not valid JSON");
        if (rc != LS_OK) ls_error_prefix("%s", cfg_path);
        cJSON_Delete(root);
        free(text);
    }
    free(cfg_path);
    if (rc != LS_OK) return LS_ERR;

    char *model_path = path_join(dir, "adapter_model.safetensors");
    char *bias_path = path_join(dir, "lm_head_bias.safetensors");
    int head_bias = file_exists(bias_path);
    ls_safetensors st = {0}, sb = {0};
    rc = ls_safetensors_open(model_path, &st);
    if (rc == LS_OK && head_bias) rc = ls_safetensors_open(bias_path, &sb);
    if (rc == LS_OK) {
        ls_lora_init(out, cfg, rank, alpha, targets, head_bias);
        int expected = 0;
        char name[160];
        for (int l = 0; rc == LS_OK && l < cfg->layers; l++)
            for (int p = 0; rc == LS_OK && p < LS_PROJ_COUNT; p++) {
                if (!(targets & (1u << p))) continue;
                int out_f, in_f;
                ls_proj_shape(cfg, (ls_proj)p, &out_f, &in_f);
                const ls_lora_pair *pair = &out->pair[l * LS_PROJ_COUNT + p];
                int64_t sa[2] = {rank, in_f}, sbb[2] = {out_f, rank};
                ls_lora_tensor_name(name, sizeof name, l, (ls_proj)p, 0);
                rc = read_checked(&st, name, 2, sa, pair->a);
                ls_lora_tensor_name(name, sizeof name, l, (ls_proj)p, 1);
                if (rc == LS_OK) rc = read_checked(&st, name, 2, sbb, pair->b);
                expected += 2;
            }
        if (rc == LS_OK && st.n_tensors != expected) {
            /* name one tensor that is not part of the layout the config describes */
            for (int i = 0; i < st.n_tensors && rc == LS_OK; i++) {
                int ok = 0;
                for (int l = 0; !ok && l < cfg->layers; l++)
                    for (int p = 0; !ok && p < LS_PROJ_COUNT; p++)
                        for (int b = 0; !ok && b < 2 && (targets & (1u << p)); b++) {
                            ls_lora_tensor_name(name, sizeof name, l, (ls_proj)p, b);
                            ok = strcmp(name, st.tensors[i].name) == 0;
                        }
                char nb[160];
                if (!ok)
                    rc = ls_error("%s: unexpected tensor '%s' (not in the layers and target_modules of the adapter)",
                                  st.name, ls_printable(st.tensors[i].name, nb, sizeof nb));
            }
        }
        if (rc == LS_OK && head_bias) {
            int64_t sv[1] = {cfg->vocab_size};
            rc = read_checked(&sb, "lm_head.bias", 1, sv, out->lm_head_bias);
        }
        if (rc != LS_OK) ls_lora_free(out);
    }
    ls_safetensors_close(&st);
    ls_safetensors_close(&sb);
    free(model_path);
    free(bias_path);
    return rc;
}

int ls_lora_save(const char *dir, const ls_lora *lora, const ls_model_config *cfg) {
    return ls_lora_save_for(dir, lora, cfg, NULL);
}

int ls_lora_save_for(const char *dir, const ls_lora *lora, const ls_model_config *cfg, const char *base_model) {
    if (lora->layers != cfg->layers) return ls_error("%s: adapter has %d layers, the model %d", dir, lora->layers, cfg->layers);
    if (ls_mkdirs(dir) != LS_OK) return LS_ERR;
    /* adapter_config.json, as PEFT writes it for a plain LoRA */
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
    cJSON_AddNumberToObject(root, "r", lora->rank);
    cJSON_AddItemToObject(root, "lora_alpha", float_number(lora->alpha));
    cJSON_AddNumberToObject(root, "lora_dropout", 0.0);
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON *tm = cJSON_AddArrayToObject(root, "target_modules");
    for (int p = 0; p < LS_PROJ_COUNT; p++)
        if (lora->targets & (1u << p)) cJSON_AddItemToArray(tm, cJSON_CreateString(ls_proj_names[p]));
    cJSON_AddBoolToObject(root, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(root, "use_rslora", 0);
    cJSON_AddBoolToObject(root, "use_dora", 0);
    cJSON_AddBoolToObject(root, "init_lora_weights", 1);
    cJSON_AddNullToObject(root, "modules_to_save");
    cJSON_AddNullToObject(root, "layers_to_transform");
    cJSON_AddBoolToObject(root, "inference_mode", 1);
    if (base_model) cJSON_AddStringToObject(root, "base_model_name_or_path", base_model);
    else cJSON_AddNullToObject(root, "base_model_name_or_path");
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    size_t tl = strlen(text);
    text = ls_realloc(text, tl + 2);
    memcpy(text + tl, "\n", 2);
    char *cfg_path = path_join(dir, "adapter_config.json");
    int rc = ls_write_file_atomic(cfg_path, text, strlen(text));
    free(text);
    free(cfg_path);
    if (rc != LS_OK) return LS_ERR;

    /* adapter_model.safetensors, F32, in arena order */
    int n = 0;
    ls_st_write *t = ls_calloc((size_t)cfg->layers * LS_PROJ_COUNT * 2 + 1, sizeof *t);
    char (*names)[128] = ls_calloc((size_t)cfg->layers * LS_PROJ_COUNT * 2 + 1, sizeof *names);
    for (int l = 0; l < cfg->layers; l++)
        for (int p = 0; p < LS_PROJ_COUNT; p++) {
            if (!(lora->targets & (1u << p))) continue;
            int out_f, in_f;
            ls_proj_shape(cfg, (ls_proj)p, &out_f, &in_f);
            const ls_lora_pair *pair = &lora->pair[l * LS_PROJ_COUNT + p];
            for (int is_b = 0; is_b < 2; is_b++, n++) {
                ls_lora_tensor_name(names[n], sizeof names[n], l, (ls_proj)p, is_b);
                t[n] = (ls_st_write){.name = names[n], .dtype = LS_ST_F32, .rank = 2, .data = is_b ? pair->b : pair->a};
                t[n].shape[0] = is_b ? out_f : lora->rank;
                t[n].shape[1] = is_b ? lora->rank : in_f;
            }
        }
    static const ls_st_meta meta[] = {{"format", "pt"}};
    char *model_path = path_join(dir, "adapter_model.safetensors");
    rc = ls_safetensors_write(model_path, t, n, meta, 1);
    free(model_path);
    free(t);
    free(names);

    /* the head bias, which PEFT has no place for, beside it; a stale one is removed */
    char *bias_path = path_join(dir, "lm_head_bias.safetensors");
    if (rc == LS_OK && lora->head_bias) {
        ls_st_write b = {.name = "lm_head.bias", .dtype = LS_ST_F32, .rank = 1, .data = lora->lm_head_bias};
        b.shape[0] = cfg->vocab_size;
        rc = ls_safetensors_write(bias_path, &b, 1, meta, 1);
    } else if (rc == LS_OK && unlink(bias_path) != 0 && errno != ENOENT) {
        rc = ls_error("%s: cannot remove the stale head bias: %s", bias_path, strerror(errno));
    }
    free(bias_path);
    return rc;
}
