/* cmd_model.c: `lorasweep model init` (a random checkpoint of a preset) and `lorasweep model info`. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/model.h"
#include "lorasweep/safetensors.h"
#include "lorasweep/tokenizer.h"

static const char init_usage[] =
    "usage: lorasweep model init --preset NAME --out DIR [--seed S] [--tokenizer FILE]\n"
    "\n"
    "Writes a Qwen2 checkpoint with random weights in Hugging Face layout:\n"
    "  DIR/config.json          every key a real Qwen2 config.json has\n"
    "  DIR/model.safetensors    bfloat16 weights, tensor names as in Qwen2.5\n"
    "  DIR/tokenizer.json       a copy of FILE, when --tokenizer is given; otherwise copy one in\n"
    "                           yourself, since the commands that read DIR need it\n"
    "Weights: RMSNorm weights are 1, every other tensor (matrices and the q/k/v biases) is drawn\n"
    "from N(0, 0.02^2) (initializer_range). Biases are random rather than zero on purpose, so\n"
    "that tests exercise them. The same seed gives the same file.\n"
    "  --preset NAME     tiny          C 64,  F 160,  L 2,  4 heads, 2 kv heads (as golden/qwen2-tiny)\n"
    "                    small         C 256, F 704,  L 4,  4 heads, 2 kv heads\n"
    "                    qwen2.5-0.5b  C 896, F 4864, L 24, 14 heads, 2 kv heads (~1 GB)\n"
    "                    all with the Qwen2.5 vocabulary (151936) and tied embeddings\n"
    "  --out DIR         created (with its parents) if missing; files there are replaced; a run\n"
    "                    that fails leaves nothing it created\n"
    "  --seed S          random seed (default 0)\n"
    "  --tokenizer FILE  a tokenizer.json to check and copy into DIR\n";

static const char info_usage[] =
    "usage: lorasweep model info DIR\n"
    "\n"
    "Loads the checkpoint in DIR (config.json and model.safetensors, or the shards of\n"
    "model.safetensors.index.json), checking every tensor, and prints as JSON: the\n"
    "configuration, parameter counts (total and per part), LoRA parameters per unit of rank for\n"
    "each projection, and the number of weights that are not finite.\n";

/* ---------------------------------------------------------------- init */

typedef struct {
    gsl_rng *rng;
    int ones;
} fill_ctx;

static void fill_values(void *ctx, float *out, uint64_t start, size_t count) {
    const fill_ctx *f = ctx;
    (void)start;
    for (size_t i = 0; i < count; i++) out[i] = f->ones ? 1.0f : (float)gsl_ran_gaussian_ziggurat(f->rng, 0.02);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const ls_model_tensor *)a)->name, ((const ls_model_tensor *)b)->name);
}

/* A tokenizer.json that loads and fits the vocabulary. */
static int check_tokenizer(const char *src, const ls_model_config *cfg) {
    ls_tokenizer *tok = ls_tokenizer_load(src);
    if (!tok) return ls_error_prefix("--tokenizer");
    int n_ids = ls_tokenizer_n_ids(tok);
    ls_tokenizer_free(tok);
    return ls_model_check_tokenizer(cfg, n_ids, src);
}

/* Copy a checked tokenizer.json to dir/tokenizer.json. */
static int copy_tokenizer(const char *src, const char *dir) {
    size_t len;
    char *bytes = ls_read_file(src, &len);
    if (!bytes) return LS_ERR;
    size_t n = strlen(dir) + 64;
    char *dst = ls_malloc(n), *tmp = ls_malloc(n + 32);
    snprintf(dst, n, "%s/tokenizer.json", dir);
    snprintf(tmp, n + 32, "%s.tmp%ld", dst, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(bytes, 1, len, f) == len;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, dst) != 0) ok = 0;
    int rc = ok ? LS_OK : ls_error("%s: cannot write: %s", dst, strerror(errno));
    if (!ok) unlink(tmp);
    free(bytes);
    free(dst);
    free(tmp);
    return rc;
}

static int write_random_weights(const char *path, const ls_model_config *cfg, uint64_t seed) {
    int n = ls_model_tensors(cfg, NULL);
    ls_model_tensor *list = ls_malloc((size_t)n * sizeof *list);
    ls_model_tensors(cfg, list);
    qsort(list, (size_t)n, sizeof *list, cmp_tensor_name); /* file order: by name, as Hugging Face writes */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) {
        fprintf(stderr, "lorasweep: out of memory allocating a random number generator at %s:%d\n", __FILE__, __LINE__);
        abort();
    }
    gsl_rng_set(rng, (unsigned long)((seed ^ (seed >> 32)) & 0xffffffffu));
    ls_st_write *w = ls_calloc((size_t)n, sizeof *w);
    fill_ctx *ctx = ls_calloc((size_t)n, sizeof *ctx);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(list[i].name);
        ctx[i] = (fill_ctx){.rng = rng, .ones = len > 11 && strcmp(list[i].name + len - 11, "norm.weight") == 0};
        w[i] = (ls_st_write){.name = list[i].name, .dtype = LS_ST_BF16, .rank = list[i].rank, .fill = fill_values,
                             .ctx = &ctx[i]};
        w[i].shape[0] = list[i].shape[0];
        w[i].shape[1] = list[i].shape[1];
    }
    static const ls_st_meta meta[] = {{"format", "pt"}};
    int rc = ls_safetensors_write(path, w, n, meta, 1);
    gsl_rng_free(rng);
    free(ctx);
    free(w);
    free(list);
    return rc;
}


/* The topmost directory of dir's path that does not exist (malloc'ed), or NULL when dir does. */
static char *first_missing(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) == 0) return NULL;
    char *top = ls_strdup(dir);
    for (;;) {
        char *slash = strrchr(top, '/');
        while (slash && slash > top && slash[1] == '\0') { /* "a/b/" */
            *slash = '\0';
            slash = strrchr(top, '/');
        }
        if (!slash || slash == top) return top;
        *slash = '\0';
        if (stat(top, &sb) == 0) {
            *slash = '/';
            return top;
        }
    }
}

/* Undo a failed init: the files it writes in dir, then dir and its parents up to top, which this
 * run created (rmdir leaves a directory that is not empty). */
static void remove_created(const char *dir, const char *top) {
    static const char *const files[] = {"tokenizer.json", "config.json", "model.safetensors"};
    size_t n = strlen(dir) + 32;
    char *path = ls_malloc(n);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, n, "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, n, "%s", dir);
    size_t keep = strlen(top);
    while (strlen(path) >= keep) {
        rmdir(path);
        char *slash = strrchr(path, '/');
        if (!slash) break;
        *slash = '\0';
    }
    free(path);
}

static int cmd_model_init(int argc, char **argv) {
    static const struct option opts[] = {
        {"preset", required_argument, 0, 'p'}, {"out", required_argument, 0, 'o'},
        {"seed", required_argument, 0, 's'},   {"tokenizer", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    const char *preset = NULL, *out = NULL, *tok = NULL;
    long seed = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":p:o:s:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': preset = optarg; break;
        case 'o': out = optarg; break;
        case 't': tok = optarg; break;
        case 's':
            if (cli_long("model init", "seed", optarg, 0, LONG_MAX, &seed) != CLI_EXIT_OK) return CLI_EXIT_USAGE;
            break;
        case 'h': fputs(init_usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("model init", argv);
        }
    }
    if (optind < argc) return cli_usage_error("model init", "unexpected argument '%s'", argv[optind]);
    if (!preset) return cli_usage_error("model init", "--preset NAME is required");
    if (!out) return cli_usage_error("model init", "--out DIR is required");
    ls_model_config cfg;
    if (ls_model_config_preset(preset, &cfg) != LS_OK) return cli_usage_error("model init", "--preset: %s", ls_last_error());

    struct stat sb;
    if (stat(out, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        ls_error("%s: exists and is not a directory", out);
        return cli_fail();
    }
    /* The tokenizer before anything is created; a failure later removes what this run created. */
    if (tok && check_tokenizer(tok, &cfg) != LS_OK) return cli_fail();
    char *created = first_missing(out); /* the topmost directory this run creates, or NULL */
    if (created && ls_mkdirs(out) != LS_OK) {
        free(created);
        return cli_fail();
    }
    int rc = tok ? copy_tokenizer(tok, out) : LS_OK;
    size_t n = strlen(out) + 32;
    char *path = ls_malloc(n);
    snprintf(path, n, "%s/config.json", out);
    if (rc == LS_OK) rc = ls_model_config_save(path, &cfg);
    snprintf(path, n, "%s/model.safetensors", out);
    if (rc == LS_OK) rc = write_random_weights(path, &cfg, (uint64_t)seed);
    free(path);
    if (rc != LS_OK) {
        cli_fail();
        if (created) remove_created(out, created);
        free(created);
        return CLI_EXIT_FAIL;
    }
    free(created);
    printf("%s: preset %s, %zu parameters (bfloat16), seed %ld%s\n", out, preset, ls_model_n_params(&cfg), seed,
           tok ? ", tokenizer copied" : "; copy a tokenizer.json in before using it");
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- info */

static void add_count(cJSON *obj, const char *key, size_t n) { cJSON_AddNumberToObject(obj, key, (double)n); }

static cJSON *config_json(const ls_model_config *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(o, "intermediate_size", c->intermediate);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_positions);
    char buf[32];
    snprintf(buf, sizeof buf, "%g", (double)c->rms_eps);
    cJSON_AddNumberToObject(o, "rms_norm_eps", strtod(buf, NULL));
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_embeddings != 0);
    if (c->bos_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", c->bos_id);
    else cJSON_AddNullToObject(o, "bos_token_id");
    if (c->eos_id >= 0) cJSON_AddNumberToObject(o, "eos_token_id", c->eos_id);
    else cJSON_AddNullToObject(o, "eos_token_id");
    return o;
}

static int cmd_model_info(int argc, char **argv) {
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(info_usage, stdout);
            return CLI_EXIT_OK;
        }
        return cli_bad_option("model info", argv);
    }
    if (optind >= argc) return cli_usage_error("model info", "a checkpoint directory DIR is required");
    if (optind + 1 < argc) return cli_usage_error("model info", "unexpected argument '%s'", argv[optind + 1]);
    const char *dir = argv[optind];
    ls_model m;
    if (ls_model_load(dir, &m) != LS_OK) return cli_fail();
    const ls_model_config *cfg = &m.cfg;

    int n = ls_model_tensors(cfg, NULL);
    ls_model_tensor *list = ls_malloc((size_t)n * sizeof *list);
    ls_model_tensors(cfg, list);
    size_t attention = 0, mlp = 0, norms = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(list[i].name, "model.layers.", 13) != 0) continue;
        if (strstr(list[i].name, ".self_attn.")) attention += list[i].numel;
        else if (strstr(list[i].name, ".mlp.")) mlp += list[i].numel;
        else norms += list[i].numel;
    }
    free(list);
    size_t non_finite = 0;
    for (size_t i = 0; i < m.arena_floats; i++) non_finite += !isfinite(m.arena[i]);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "dir", dir);
    cJSON_AddItemToObject(root, "config", config_json(cfg));
    cJSON *p = cJSON_AddObjectToObject(root, "parameters");
    size_t VC = (size_t)cfg->vocab_size * (size_t)cfg->hidden;
    add_count(p, "total", ls_model_n_params(cfg));
    add_count(p, "embedding", VC);
    add_count(p, "lm_head", cfg->tie_embeddings ? 0 : VC);
    add_count(p, "layers", attention + mlp + norms);
    add_count(p, "final_norm", (size_t)cfg->hidden);
    cJSON *pl = cJSON_AddObjectToObject(p, "per_layer");
    add_count(pl, "attention", attention / (size_t)cfg->layers);
    add_count(pl, "mlp", mlp / (size_t)cfg->layers);
    add_count(pl, "norms", norms / (size_t)cfg->layers);
    cJSON *lr = cJSON_AddObjectToObject(root, "lora_parameters_per_rank");
    for (int k = 0; k < LS_PROJ_COUNT; k++) {
        int out_f, in_f;
        ls_proj_shape(cfg, (ls_proj)k, &out_f, &in_f);
        add_count(lr, ls_proj_names[k], (size_t)cfg->layers * (size_t)(out_f + in_f));
    }
    add_count(root, "non_finite_weights", non_finite);
    char *text = cJSON_Print(root);
    puts(text);
    free(text);
    cJSON_Delete(root);
    ls_model_free(&m);
    return CLI_EXIT_OK;
}

static const cli_command model_commands[] = {
    {"init", cmd_model_init, "write a checkpoint of a preset configuration with random weights"},
    {"info", cmd_model_info, "check a checkpoint and print its configuration and parameter counts"},
    {NULL, NULL, NULL},
};

int cmd_model(int argc, char **argv) { return cli_dispatch("lorasweep model", model_commands, argc, argv); }
