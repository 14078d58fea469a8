/*
 * model.h: the Qwen2 architecture described once: its configuration, the frozen weights, the
 * LoRA adapter, and where their memory comes from.
 *
 * Dimension letters used in every shape comment:
 *   V vocabulary   C hidden size   F MLP intermediate size   L layers
 *   NH query heads   KVH key/value heads   hd head dim (C / NH)   R LoRA rank
 *   B sequences in a batch   T tokens per sequence
 * Matrices are row-major and stored as Hugging Face stores them: a projection's weight is
 * (out, in) and y = x W^T + b.
 */
#ifndef LORASWEEP_MODEL_H
#define LORASWEEP_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int vocab_size;       /* V */
    int hidden;           /* C */
    int intermediate;     /* F */
    int layers;           /* L */
    int heads;            /* NH */
    int kv_heads;         /* KVH (divides NH) */
    int head_dim;         /* hd = C / NH */
    int max_positions;    /* longest sequence the model allows */
    float rms_eps;
    float rope_theta;
    int tie_embeddings;   /* output head is the embedding matrix */
    int32_t bos_id, eos_id;
} ls_model_config;

/* Read a Hugging Face config.json (model_type qwen2). Unknown keys are ignored; missing or
 * inconsistent required keys are an error naming the file and the key. */
int ls_model_config_load(const char *path, ls_model_config *out);

/* The seven projections a LoRA adapter can target, in PEFT's names. */
typedef enum {
    LS_PROJ_Q, LS_PROJ_K, LS_PROJ_V, LS_PROJ_O, LS_PROJ_GATE, LS_PROJ_UP, LS_PROJ_DOWN, LS_PROJ_COUNT
} ls_proj;
extern const char *const ls_proj_names[LS_PROJ_COUNT]; /* "q_proj", ... "down_proj" */
/* in and out features of a projection under a config. */
void ls_proj_shape(const ls_model_config *cfg, ls_proj p, int *out_features, int *in_features);

/* Frozen weights of one layer, fp32. */
typedef struct {
    float *attn_norm;        /* (C)          input_layernorm */
    float *wq, *bq;          /* (NH*hd, C), (NH*hd) */
    float *wk, *bk;          /* (KVH*hd, C), (KVH*hd) */
    float *wv, *bv;          /* (KVH*hd, C), (KVH*hd) */
    float *wo;               /* (C, NH*hd) */
    float *mlp_norm;         /* (C)          post_attention_layernorm */
    float *wgate, *wup;      /* (F, C) */
    float *wdown;            /* (C, F) */
} ls_layer_weights;

typedef struct {
    ls_model_config cfg;
    float *embed;            /* (V, C)  also the output head when tied */
    float *lm_head;          /* (V, C)  == embed when tied */
    ls_layer_weights *layer; /* (L) */
    float *final_norm;       /* (C) */
    float *arena;            /* one block holding every tensor above */
    size_t arena_floats;
} ls_model;

/* Load config.json and model.safetensors (or the shards of model.safetensors.index.json) from a
 * checkpoint directory; bf16/f16/f32 tensors are converted to fp32. Every tensor is located and
 * its shape checked before memory is allocated. On failure *out is zeroed (ls_model_free is
 * still safe) and the error names the file and the tensor. */
int ls_model_load(const char *dir, ls_model *out);

/* Whether a tokenizer (of n_ids ids, ls_tokenizer_n_ids, read from tok_path) fits a model: every
 * id it can produce must have a row in the model's embedding (vocab_size rows), or the forward
 * pass would read past it. LS_ERR with one line naming the tokenizer file, its ids and the model's
 * vocabulary otherwise. Every command that loads both calls it (train, eval and sweep trials,
 * score, generate, model init --tokenizer) before anything is run. */
int ls_model_check_tokenizer(const ls_model_config *cfg, int n_ids, const char *tok_path);
void ls_model_free(ls_model *m);
/* A fingerprint of a checkpoint directory's files as they are now (names, inodes, sizes,
 * modification and change times of config.json, the index and every *.safetensors): equal
 * fingerprints mean the files were not changed, replaced, added or removed in between. LS_ERR when
 * the directory or a file cannot be read. */
int ls_model_fingerprint(const char *dir, uint64_t *out);

/* The size table behind the arena: every checkpoint tensor under cfg, in arena order (embed,
 * final_norm, then per layer attn_norm wq bq wk bk wv bv wo mlp_norm wgate wup wdown, then
 * lm_head only when not tied), with its Hugging Face name, shape and offset in the arena. */
typedef struct {
    char name[80];           /* "model.layers.3.self_attn.q_proj.weight" */
    int rank;                /* 1 or 2 */
    int64_t shape[2];
    size_t offset, numel;    /* floats */
} ls_model_tensor;
/* Number of tensors (3 + 12 L when untied, one less when tied); fills list when non-NULL. */
int ls_model_tensors(const ls_model_config *cfg, ls_model_tensor *list);
/* Parameter count of the frozen model (the arena's size; a tied head counts once). */
size_t ls_model_n_params(const ls_model_config *cfg);
/* Allocate a zeroed arena for cfg and point every field into it (what ls_model_load fills). */
void ls_model_alloc(ls_model *m, const ls_model_config *cfg);

/* Built-in configurations: "tiny" (C 64, L 2, as golden/qwen2-tiny), "small" (C 256, L 4) and
 * "qwen2.5-0.5b" (the real one). LS_ERR for another name. */
int ls_model_config_preset(const char *name, ls_model_config *out);
/* Write cfg as a Hugging Face config.json (every key a real Qwen2 config has); temp + rename. */
int ls_model_config_save(const char *path, const ls_model_config *cfg);

/* A LoRA adapter: for each layer and targeted projection y += scale * B (A x), plus an optional
 * trainable bias on the output head. All fp32, in one block. */
typedef struct {
    float *a; /* (R, in) */
    float *b; /* (out, R) */
} ls_lora_pair;

typedef struct {
    int rank;                      /* R */
    float alpha;                   /* PEFT lora_alpha; scale = alpha / R */
    float scale;
    unsigned targets;              /* bit (1 << ls_proj) for each targeted projection */
    int head_bias;                 /* a trainable (V) bias on the output head */
    int layers;
    ls_lora_pair *pair;            /* (L * LS_PROJ_COUNT), NULL a/b where not targeted */
    float *lm_head_bias;           /* (V) or NULL */
    float *arena;                  /* every parameter, contiguous: optimisers walk this */
    size_t arena_floats;
} ls_lora;

/* Allocate an adapter for cfg (parameters zeroed). */
void ls_lora_init(ls_lora *lora, const ls_model_config *cfg, int rank, float alpha, unsigned targets,
                  int head_bias);
/* A, Kaiming-uniform as PEFT does (bound 1/sqrt(in)), B zero, head bias zero. */
void ls_lora_reset(ls_lora *lora, const ls_model_config *cfg, uint64_t seed);
/* A second adapter with the same layout (for gradients and optimiser moments). */
void ls_lora_like(ls_lora *dst, const ls_lora *src, const ls_model_config *cfg);
void ls_lora_free(ls_lora *lora);
/* Read/write PEFT layout: DIR/adapter_config.json + DIR/adapter_model.safetensors (and the head
 * bias as DIR/lm_head_bias.safetensors). Load checks shapes against cfg. */
int ls_lora_load(const char *dir, const ls_model_config *cfg, ls_lora *out);
int ls_lora_save(const char *dir, const ls_lora *lora, const ls_model_config *cfg);
/* The same, recording base_model (a model directory or hub id, may be NULL) as
 * base_model_name_or_path in adapter_config.json. */
int ls_lora_save_for(const char *dir, const ls_lora *lora, const ls_model_config *cfg, const char *base_model);
/* PEFT's tensor name of a pair: "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight". */
void ls_lora_tensor_name(char *buf, size_t cap, int layer, ls_proj p, int is_b);

#endif
