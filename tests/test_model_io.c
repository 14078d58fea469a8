/*
 * test_model_io.c: config.json, checkpoint loading (single file and shards) against values read
 * independently from the golden checkpoint, broken checkpoints and configs with their one-line
 * messages, LoRA adapters (the golden one, save -> load, PEFT initialisation), and
 * `lorasweep model init`.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/model.h"
#include "lorasweep/safetensors.h"
#include "testing.h"

static char golden_dir[4096];

static const char *golden(void) {
    snprintf(golden_dir, sizeof golden_dir, "%s", shared_path("golden/qwen2-tiny/model.safetensors"));
    *strrchr(golden_dir, '/') = '\0';
    return golden_dir;
}

/* A fresh subdirectory of the test's temporary directory. */
static const char *subdir(const char *name) {
    static char path[4][1024];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", temp_dir(), name);
    mkdir(p, 0777);
    return p;
}

static void write_file(const char *dir, const char *name, const char *text) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *dir, const char *name) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return ls_read_file(path, NULL);
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char *text = read_text(from_dir, name);
    assert_non_null(text);
    write_file(to_dir, name, text);
    free(text);
}

static void expect_error_has(const char *needle) {
    const char *msg = ls_last_error();
    if (!strstr(msg, needle) || strchr(msg, '\n')) fail_msg("expected '%s' in the error, got '%s'", needle, msg);
}

/* ---------------------------------------------------------------- the golden checkpoint */

static void test_golden_checkpoint(void **state) {
    ls_model m;
    if (ls_model_load(golden(), &m) != LS_OK) fail_msg("%s", ls_last_error());
    const ls_model_config *c = &m.cfg;
    assert_int_equal(c->vocab_size, 151936);
    assert_int_equal(c->hidden, 64);
    assert_int_equal(c->intermediate, 160);
    assert_int_equal(c->layers, 2);
    assert_int_equal(c->heads, 4);
    assert_int_equal(c->kv_heads, 2);
    assert_int_equal(c->head_dim, 16);
    assert_int_equal(c->max_positions, 32768);
    assert_true(c->rms_eps == 1e-6f);
    assert_true(c->rope_theta == 10000.0f);
    assert_int_equal(c->tie_embeddings, 1);
    assert_int_equal(c->bos_id, 151643);
    assert_int_equal(c->eos_id, 151645);
    /* values read from the file by a separate Python script (header parsed by hand, bf16 -> f32) */
    const float embed0[4] = {-0.15234375f, -0.0751953125f, -0.0654296875f, -0.1611328125f};
    const float embed_last[4] = {-0.049560546875f, -0.05126953125f, 0.003326416015625f, 0.134765625f};
    const float down[4] = {-0.0230712890625f, 0.06787109375f, 0.0010833740234375f, -0.01519775390625f};
    const float kbias[4] = {0.189453125f, 0.06494140625f, 0.2314453125f, 0.013427734375f};
    const float norm[4] = {0.8671875f, 0.87109375f, 0.91796875f, 1.1640625f};
    assert_memory_equal(m.embed, embed0, sizeof embed0);
    assert_memory_equal(m.embed + (size_t)151935 * 64 + 60, embed_last, sizeof embed_last);
    assert_memory_equal(m.layer[1].wdown + 63 * 160 + 156, down, sizeof down);
    assert_memory_equal(m.layer[0].bk, kbias, sizeof kbias);
    assert_memory_equal(m.final_norm, norm, sizeof norm);
    double sum = 0;
    for (size_t i = 0; i < m.arena_floats; i++) sum += m.arena[i];
    assert_true(fabs(sum - 384.1747965998802) < 1e-9);
    /* tied head; one arena exactly the parameter count; every pointer inside it */
    assert_ptr_equal(m.lm_head, m.embed);
    assert_int_equal(m.arena_floats, ls_model_n_params(c));
    assert_int_equal(m.arena_floats, 9810496);
    assert_ptr_equal(m.embed, m.arena);
    for (int l = 0; l < 2; l++) {
        const ls_layer_weights *w = &m.layer[l];
        const float *p[12] = {w->attn_norm, w->wq, w->bq, w->wk, w->bk, w->wv, w->bv, w->wo, w->mlp_norm, w->wgate, w->wup, w->wdown};
        for (int k = 0; k < 12; k++) assert_true(p[k] > m.arena && p[k] < m.arena + m.arena_floats);
        for (int k = 1; k < 12; k++) assert_true(p[k] > p[k - 1]);
    }
    ls_model_free(&m);
    assert_null(m.arena);
    ls_model_free(&m); /* twice is harmless */
}

static void test_size_table(void **state) {
    ls_model_config c;
    assert_int_equal(ls_model_config_preset("qwen2.5-0.5b", &c), LS_OK);
    assert_int_equal(ls_model_n_params(&c), 494032768); /* Qwen2.5-0.5B's published count */
    int n = ls_model_tensors(&c, NULL);
    assert_int_equal(n, 2 + 12 * 24);
    ls_model_tensor *list = malloc((size_t)n * sizeof *list);
    ls_model_tensors(&c, list);
    assert_string_equal(list[0].name, "model.embed_tokens.weight");
    assert_string_equal(list[1].name, "model.norm.weight");
    assert_string_equal(list[2 + 12 + 3].name, "model.layers.1.self_attn.k_proj.weight");
    assert_int_equal(list[2 + 12 + 3].shape[0], 128);
    assert_int_equal(list[2 + 12 + 3].shape[1], 896);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(list[i].offset, at);
        at += list[i].numel;
    }
    assert_int_equal(at, ls_model_n_params(&c));
    free(list);
    c.tie_embeddings = 0;
    assert_int_equal(ls_model_tensors(&c, NULL), 3 + 12 * 24);
    assert_int_equal(ls_model_n_params(&c), 494032768 + 136134656);
    /* projections */
    int out_f, in_f;
    ls_proj_shape(&c, LS_PROJ_K, &out_f, &in_f);
    assert_true(out_f == 128 && in_f == 896);
    ls_proj_shape(&c, LS_PROJ_O, &out_f, &in_f);
    assert_true(out_f == 896 && in_f == 896);
    ls_proj_shape(&c, LS_PROJ_DOWN, &out_f, &in_f);
    assert_true(out_f == 896 && in_f == 4864);
    assert_string_equal(ls_proj_names[LS_PROJ_GATE], "gate_proj");
    char name[128];
    ls_lora_tensor_name(name, sizeof name, 3, LS_PROJ_GATE, 1);
    assert_string_equal(name, "base_model.model.model.layers.3.mlp.gate_proj.lora_B.weight");
    ls_lora_tensor_name(name, sizeof name, 0, LS_PROJ_Q, 0);
    assert_string_equal(name, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    assert_int_equal(ls_model_config_preset("huge", &c), LS_ERR);
    expect_error_has("unknown preset 'huge'");
}

/* ---------------------------------------------------------------- config.json */

static const char *good_config =
    "{\"architectures\":[\"Qwen2ForCausalLM\"],\"model_type\":\"qwen2\",\"hidden_size\":64,"
    "\"intermediate_size\":160,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"vocab_size\":151936,\"rms_norm_eps\":1e-06,\"rope_theta\":10000.0,\"max_position_embeddings\":32768,"
    "\"tie_word_embeddings\":true,\"hidden_act\":\"silu\",\"use_sliding_window\":false}";

/* good_config with one substring replaced; returns a malloc'ed text. */
static char *config_with(const char *from, const char *to) {
    const char *at = strstr(good_config, from);
    if (!at) fail_msg("fixture lacks %s", from);
    size_t n = strlen(good_config) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(at - good_config), good_config, to, at + strlen(from));
    return s;
}

static void test_config(void **state) {
    const char *dir = subdir("config");
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ls_model_config c;
    write_file(dir, "config.json", good_config);
    if (ls_model_config_load(path, &c) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.bos_id, -1); /* absent */

    struct {
        const char *from, *to, *message;
    } cases[] = {
        {"\"hidden_size\":64,", "", "missing key 'hidden_size'"},
        {"\"vocab_size\":151936,", "", "missing key 'vocab_size'"},
        {"\"num_hidden_layers\":2", "\"num_hidden_layers\":0", "'num_hidden_layers' is 0, outside [1, 1024]"},
        {"\"hidden_size\":64", "\"hidden_size\":63", "hidden_size 63 is not a multiple of num_attention_heads 4"},
        {"\"num_key_value_heads\":2", "\"num_key_value_heads\":3", "num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
        {"\"hidden_size\":64", "\"hidden_size\":64.5", "'hidden_size' is not an integer"},
        {"\"hidden_size\":64", "\"hidden_size\":\"64\"", "'hidden_size' is not an integer"},
        {"\"hidden_size\":64", "\"hidden_size\":-64", "outside"},
        {"\"vocab_size\":151936", "\"vocab_size\":1e12", "outside"},
        {"\"rms_norm_eps\":1e-06", "\"rms_norm_eps\":0", "'rms_norm_eps' is 0"},
        {"\"rope_theta\":10000.0", "\"rope_theta\":\"big\"", "'rope_theta' is not a number"},
        {"\"tie_word_embeddings\":true", "\"tie_word_embeddings\":1", "'tie_word_embeddings' is not true or false"},
        {"[\"Qwen2ForCausalLM\"],\"model_type\":\"qwen2\"", "[\"LlamaForCausalLM\"],\"model_type\":\"llama\"",
         "model_type 'llama' is not qwen2"},
        {"\"silu\"", "\"gelu\"", "hidden_act"},
        {"\"use_sliding_window\":false", "\"use_sliding_window\":true", "use_sliding_window true is not supported"},
        {"\"use_sliding_window\":false", "\"rope_scaling\":{\"type\":\"yarn\"}", "rope_scaling is not supported"},
        {"\"use_sliding_window\":false", "\"head_dim\":32", "head_dim 32 differs"},
        {"\"use_sliding_window\":false", "\"eos_token_id\":151936", "'eos_token_id' is not a token id"},
        {"\"hidden_size\":64", "\"hidden_size\":", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *text = config_with(cases[i].from, cases[i].to);
        write_file(dir, "config.json", text);
        free(text);
        if (ls_model_config_load(path, &c) != LS_ERR) fail_msg("case %zu accepted", i);
        expect_error_has(cases[i].message);
        if (strncmp(ls_last_error(), path, strlen(path)) != 0) fail_msg("case %zu: '%s' lacks the path", i, ls_last_error());
    }
    /* defaults as Qwen2Config has them; eos as a list; architectures alone suffices */
    write_file(dir, "config.json",
               "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":160,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":1000,\"eos_token_id\":[7,8]}");
    if (ls_model_config_load(path, &c) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(c.kv_heads, 4);
    assert_int_equal(c.tie_embeddings, 0);
    assert_int_equal(c.max_positions, 32768);
    assert_true(c.rope_theta == 10000.0f && c.rms_eps == 1e-6f);
    assert_int_equal(c.eos_id, 7);
    assert_int_equal(ls_model_config_load("/nonexistent/config.json", &c), LS_ERR);
    expect_error_has("/nonexistent/config.json: cannot open");

    /* save -> load gives the same config, for every preset */
    const char *presets[] = {"tiny", "small", "qwen2.5-0.5b"};
    for (int i = 0; i < 3; i++) {
        ls_model_config p, q;
        assert_int_equal(ls_model_config_preset(presets[i], &p), LS_OK);
        assert_int_equal(ls_model_config_save(path, &p), LS_OK);
        if (ls_model_config_load(path, &q) != LS_OK) fail_msg("%s", ls_last_error());
        assert_memory_equal(&p, &q, sizeof p);
    }
    char *text = read_text(dir, "config.json");
    assert_non_null(strstr(text, "\"rms_norm_eps\":\t1e-06"));
    assert_non_null(strstr(text, "\"rope_theta\":\t1000000"));
    free(text);
}

/* RoPE settings: the top-level rope_theta, transformers 5's rope_parameters, both when they agree;
 * whatever this code would not compute as plain RoPE is refused with one line naming it. */
static void test_config_rope(void **state) {
    const char *dir = subdir("config_rope");
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ls_model_config c;
    struct {
        const char *to;
        float theta; /* 0: refused with message */
        const char *message;
    } cases[] = {
        /* rope_parameters alone, as transformers 5 writes it */
        {"\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":1000000.0}", 1e6f, NULL},
        /* both places, the same theta */
        {"\"rope_theta\":1000000.0,\"rope_parameters\":{\"rope_theta\":1e6,\"rope_type\":\"default\"}", 1e6f, NULL},
        /* the older "type" spelling, a full rotary factor, null parameters */
        {"\"rope_parameters\":{\"type\":\"default\",\"rope_theta\":500000,\"partial_rotary_factor\":1.0}", 5e5f, NULL},
        {"\"rope_theta\":20000.0,\"rope_parameters\":null", 20000.0f, NULL},
        /* parameters without a theta: the top-level one, else Qwen2Config's default */
        {"\"rope_theta\":30000.0,\"rope_parameters\":{\"rope_type\":\"default\"}", 30000.0f, NULL},
        {"\"rope_parameters\":{\"rope_type\":\"default\"}", 10000.0f, NULL},
        /* refused */
        {"\"rope_theta\":10000.0,\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":1000000.0}", 0,
         "rope_theta 10000 and rope_parameters.rope_theta 1e+06 differ"},
        {"\"rope_parameters\":{\"rope_type\":\"yarn\",\"rope_theta\":1e6,\"factor\":4.0}", 0,
         "rope_parameters.rope_type 'yarn' is not supported"},
        {"\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":2.0}", 0, "rope_parameters.rope_type 'linear'"},
        {"\"rope_parameters\":{\"rope_type\":7}", 0, "rope_parameters.rope_type is not a string"},
        {"\"rope_parameters\":{\"rope_theta\":1e6,\"factor\":4.0}", 0, "rope_parameters.factor is not understood"},
        {"\"rope_parameters\":{\"rope_type\":\"default\",\"partial_rotary_factor\":0.5}", 0,
         "rope_parameters.partial_rotary_factor other than 1 is not supported"},
        {"\"rope_parameters\":{\"rope_type\":\"default\",\"mrope_section\":[16,24,24]}", 0,
         "rope_parameters.mrope_section is not understood"},
        {"\"rope_parameters\":{\"rope_theta\":\"big\"}", 0, "rope_parameters: 'rope_theta' is not a number"},
        {"\"rope_parameters\":{\"rope_theta\":-1}", 0, "rope_parameters: 'rope_theta' is -1, outside"},
        {"\"rope_parameters\":\"default\"", 0, "rope_parameters is not an object"},
        {"\"rope_parameters\":{\"rope_type\":\"default\"},\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":2}", 0,
         "rope_scaling is not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *text = config_with("\"rope_theta\":10000.0", cases[i].to);
        write_file(dir, "config.json", text);
        free(text);
        int rc = ls_model_config_load(path, &c);
        if (cases[i].theta > 0) {
            if (rc != LS_OK) fail_msg("case %zu refused: %s", i, ls_last_error());
            if (c.rope_theta != cases[i].theta) fail_msg("case %zu: theta %g, not %g", i, c.rope_theta, cases[i].theta);
        } else {
            if (rc != LS_ERR) fail_msg("case %zu accepted (theta %g)", i, c.rope_theta);
            expect_error_has(cases[i].message);
            if (strchr(ls_last_error(), '\n')) fail_msg("case %zu: more than one line: %s", i, ls_last_error());
        }
    }
}

/* ---------------------------------------------------------------- checkpoints built from the golden one */

/* Write m's tensors as a checkpoint in dir: `shards` files (1: model.safetensors; 2+: shards and
 * an index). skip: a tensor to leave out; reshape: a tensor to store transposed. */
static void write_checkpoint(const char *dir, const ls_model *m, int shards, const char *skip, const char *reshape,
                             ls_st_dtype dtype) {
    copy_file(golden(), dir, "config.json");
    int n = ls_model_tensors(&m->cfg, NULL);
    ls_model_tensor *list = malloc((size_t)n * sizeof *list);
    ls_model_tensors(&m->cfg, list);
    ls_st_write *w = calloc((size_t)n, sizeof *w);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (skip && strcmp(list[i].name, skip) == 0) continue;
        w[k] = (ls_st_write){.name = list[i].name, .dtype = dtype, .rank = list[i].rank, .data = m->arena + list[i].offset};
        w[k].shape[0] = list[i].shape[0];
        w[k].shape[1] = list[i].shape[1];
        if (reshape && strcmp(list[i].name, reshape) == 0) w[k].shape[0] = list[i].shape[1], w[k].shape[1] = list[i].shape[0];
        k++;
    }
    char path[2048];
    if (shards == 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        assert_int_equal(ls_safetensors_write(path, w, k, NULL, 0), LS_OK);
    } else {
        cJSON *index = cJSON_CreateObject(), *map = cJSON_CreateObject();
        cJSON_AddItemToObject(cJSON_AddObjectToObject(index, "metadata"), "total_size", cJSON_CreateNumber(1));
        cJSON_AddItemToObject(index, "weight_map", map);
        for (int s = 0; s < shards; s++) {
            char name[64];
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, shards);
            int from = k * s / shards, to = k * (s + 1) / shards;
            for (int i = from; i < to; i++) cJSON_AddStringToObject(map, w[i].name, name);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            assert_int_equal(ls_safetensors_write(path, w + from, to - from, NULL, 0), LS_OK);
        }
        char *text = cJSON_Print(index);
        write_file(dir, "model.safetensors.index.json", text);
        free(text);
        cJSON_Delete(index);
    }
    free(w);
    free(list);
}

static void test_sharded_and_broken_checkpoints(void **state) {
    ls_model ref, m;
    if (ls_model_load(golden(), &ref) != LS_OK) fail_msg("%s", ls_last_error());

    const char *dir = subdir("sharded");
    write_checkpoint(dir, &ref, 3, NULL, NULL, LS_ST_BF16);
    if (ls_model_load(dir, &m) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(m.arena_floats, ref.arena_floats);
    assert_memory_equal(m.arena, ref.arena, ref.arena_floats * sizeof(float));
    ls_model_free(&m);
    /* shard problems */
    char *index = read_text(dir, "model.safetensors.index.json");
    char *bad = strdup(index);
    char *at = strstr(bad, "model-00002-of-00003");
    memcpy(at, "../../etc/passwd", 16);
    write_file(dir, "model.safetensors.index.json", bad);
    assert_int_equal(ls_model_load(dir, &m), LS_ERR);
    expect_error_has("is not a file name in the directory");
    assert_null(m.arena);
    free(bad);
    bad = strdup(index);
    at = strstr(bad, "\"model.layers.1.mlp.up_proj.weight\"");
    memcpy(at, "\"model.layers.1.mlp.up_proj.weighx\"", 35);
    write_file(dir, "model.safetensors.index.json", bad);
    assert_int_equal(ls_model_load(dir, &m), LS_ERR);
    expect_error_has("model.safetensors.index.json: tensor 'model.layers.1.mlp.up_proj.weight' is missing from weight_map");
    free(bad);
    write_file(dir, "model.safetensors.index.json", "{\"weight_map\": 3}");
    assert_int_equal(ls_model_load(dir, &m), LS_ERR);
    expect_error_has("no \"weight_map\" object");
    free(index);

    /* a single file in F32 and in F16 (F16 loses precision: compare to the rounded values) */
    dir = subdir("f32");
    write_checkpoint(dir, &ref, 1, NULL, NULL, LS_ST_F32);
    assert_int_equal(ls_model_load(dir, &m), LS_OK);
    assert_memory_equal(m.arena, ref.arena, ref.arena_floats * sizeof(float));
    ls_model_free(&m);
    dir = subdir("f16");
    write_checkpoint(dir, &ref, 1, NULL, NULL, LS_ST_F16);
    assert_int_equal(ls_model_load(dir, &m), LS_OK);
    for (size_t i = 0; i < ref.arena_floats; i += 97)
        assert_true(m.arena[i] == ls_f16_to_f32(ls_f32_to_f16(ref.arena[i])));
    ls_model_free(&m);

    dir = subdir("missing");
    write_checkpoint(dir, &ref, 1, "model.layers.1.mlp.up_proj.weight", NULL, LS_ST_BF16);
    assert_int_equal(ls_model_load(dir, &m), LS_ERR);
    expect_error_has("missing/model.safetensors: tensor 'model.layers.1.mlp.up_proj.weight' is missing");
    dir = subdir("shape");
    write_checkpoint(dir, &ref, 1, NULL, "model.layers.0.mlp.down_proj.weight", LS_ST_BF16);
    assert_int_equal(ls_model_load(dir, &m), LS_ERR);
    expect_error_has("tensor 'model.layers.0.mlp.down_proj.weight' has shape [160, 64], expected [64, 160]");
    /* an untied head in the file of a tied model is ignored; an untied config needs one */
    dir = subdir("untied");
    write_checkpoint(dir, &ref, 1, NULL, NULL, LS_ST_BF16);
    char *cfg = read_text(dir, "config.json");
    char *t = strstr(cfg, "\"tie_word_embeddings\": true");
    assert_non_null(t);
    memcpy(t, "\"tie_word_embeddings\":false", 27);
    write_file(dir, "config.json", cfg);
    free(cfg);
    assert_int_equal(ls_model_load(dir, &m), LS_ERR);
    expect_error_has("tensor 'lm_head.weight' is missing");
    dir = subdir("nothing");
    copy_file(golden(), dir, "config.json");
    assert_int_equal(ls_model_load(dir, &m), LS_ERR);
    expect_error_has("neither model.safetensors nor model.safetensors.index.json");
    dir = subdir("noconfig");
    assert_int_equal(ls_model_load(dir, &m), LS_ERR);
    expect_error_has("noconfig/config.json: cannot open");
    /* a weight stored as integers */
    dir = subdir("ints");
    copy_file(golden(), dir, "config.json");
    {
        int n = ls_model_tensors(&ref.cfg, NULL);
        ls_model_tensor *list = malloc((size_t)n * sizeof *list);
        ls_model_tensors(&ref.cfg, list);
        /* write a valid file, then patch one dtype in its header */
        ls_st_write *w = calloc((size_t)n, sizeof *w);
        for (int i = 0; i < n; i++) {
            w[i] = (ls_st_write){.name = list[i].name, .dtype = LS_ST_BF16, .rank = list[i].rank,
                                 .data = ref.arena + list[i].offset};
            w[i].shape[0] = list[i].shape[0], w[i].shape[1] = list[i].shape[1];
        }
        char path[2048];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        assert_int_equal(ls_safetensors_write(path, w, n, NULL, 0), LS_OK);
        size_t size;
        char *bytes = ls_read_file(path, &size);
        char *hit = strstr(bytes + 8, "\"model.norm.weight\":{\"dtype\":\"BF16\"");
        assert_non_null(hit);
        memcpy(strstr(hit, "\"BF16\""), "\"I16\" ", 6); /* same length; I16 has BF16's element size */
        FILE *f = fopen(path, "wb");
        fwrite(bytes, 1, size, f);
        fclose(f);
        free(bytes);
        free(w);
        free(list);
        assert_int_equal(ls_model_load(dir, &m), LS_ERR);
        expect_error_has("tensor 'model.norm.weight' is I16, not a floating-point type");
    }
    ls_model_free(&ref);
}

/* ---------------------------------------------------------------- LoRA */

static void test_golden_adapter(void **state) {
    ls_model_config c;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", golden());
    assert_int_equal(ls_model_config_load(path, &c), LS_OK);
    snprintf(path, sizeof path, "%s/adapter", golden());
    ls_lora a;
    if (ls_lora_load(path, &c, &a) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(a.rank, 4);
    assert_true(a.alpha == 8.0f && a.scale == 2.0f);
    assert_int_equal(a.targets, (1u << LS_PROJ_Q) | (1u << LS_PROJ_V));
    assert_int_equal(a.head_bias, 0);
    assert_null(a.lm_head_bias);
    assert_int_equal(a.layers, 2);
    assert_int_equal(a.arena_floats, 2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4));
    assert_null(a.pair[LS_PROJ_K].a);
    assert_null(a.pair[LS_PROJ_COUNT + LS_PROJ_O].b);
    assert_ptr_equal(a.pair[LS_PROJ_Q].a, a.arena);
    const float a0[4] = {-0.18326877057552338f, 0.5160796642303467f, 0.007478760089725256f, 0.1560346931219101f};
    const float b1[4] = {-0.17282268404960632f, -0.1768171638250351f, 0.33518359065055847f, -0.22714827954769135f};
    assert_memory_equal(a.pair[LS_PROJ_Q].a, a0, sizeof a0);
    assert_memory_equal(a.pair[LS_PROJ_COUNT + LS_PROJ_V].b + 31 * 4, b1, sizeof b1);
    ls_lora_free(&a);
}

static void test_lora_layout_and_reset(void **state) {
    ls_model_config c;
    assert_int_equal(ls_model_config_preset("tiny", &c), LS_OK);
    ls_lora a, b, g;
    unsigned all = (1u << LS_PROJ_COUNT) - 1;
    ls_lora_init(&a, &c, 3, 6.0f, all, 1);
    assert_true(a.scale == 2.0f);
    /* layer-major, projections in order, A then B, head bias last */
    float *at = a.arena;
    for (int l = 0; l < 2; l++)
        for (int p = 0; p < LS_PROJ_COUNT; p++) {
            int out_f, in_f;
            ls_proj_shape(&c, (ls_proj)p, &out_f, &in_f);
            assert_ptr_equal(a.pair[l * LS_PROJ_COUNT + p].a, at);
            at += 3 * in_f;
            assert_ptr_equal(a.pair[l * LS_PROJ_COUNT + p].b, at);
            at += out_f * 3;
        }
    assert_ptr_equal(a.lm_head_bias, at);
    assert_int_equal(a.arena_floats, (size_t)(at - a.arena) + 151936);
    for (size_t i = 0; i < a.arena_floats; i++) assert_true(a.arena[i] == 0.0f);

    ls_lora_reset(&a, &c, 42);
    ls_lora_init(&b, &c, 3, 6.0f, all, 1);
    ls_lora_reset(&b, &c, 42);
    assert_memory_equal(a.arena, b.arena, a.arena_floats * sizeof(float)); /* deterministic */
    ls_lora_reset(&b, &c, 43);
    assert_memory_not_equal(a.arena, b.arena, a.arena_floats * sizeof(float));
    for (int l = 0; l < 2; l++)
        for (int p = 0; p < LS_PROJ_COUNT; p++) {
            int out_f, in_f;
            ls_proj_shape(&c, (ls_proj)p, &out_f, &in_f);
            const ls_lora_pair *q = &a.pair[l * LS_PROJ_COUNT + p];
            float bound = 1.0f / sqrtf((float)in_f), max = 0;
            double mean = 0;
            for (int i = 0; i < 3 * in_f; i++) {
                assert_true(fabsf(q->a[i]) <= bound);
                max = fmaxf(max, fabsf(q->a[i]));
                mean += q->a[i];
            }
            assert_true(max > 0.9f * bound);                     /* the whole range is used */
            assert_true(fabs(mean / (3 * in_f)) < 0.2 * bound);   /* centred */
            for (int i = 0; i < out_f * 3; i++) assert_true(q->b[i] == 0.0f);
        }
    for (int i = 0; i < 151936; i++) assert_true(a.lm_head_bias[i] == 0.0f);

    ls_lora_like(&g, &a, &c);
    assert_int_equal(g.arena_floats, a.arena_floats);
    assert_int_equal(g.rank, 3);
    assert_int_equal(g.targets, all);
    assert_true(g.arena != a.arena && g.arena[0] == 0.0f);
    assert_int_equal(g.pair[5].a - g.arena, a.pair[5].a - a.arena);
    ls_lora_free(&g);
    ls_lora_free(&b);
    ls_lora_free(&a);
    assert_null(a.arena);

    /* only the head bias */
    ls_lora_init(&a, &c, 1, 1.0f, 0, 1);
    assert_int_equal(a.arena_floats, 151936);
    assert_ptr_equal(a.lm_head_bias, a.arena);
    ls_lora_free(&a);
}

static void test_lora_save_load(void **state) {
    ls_model_config c;
    assert_int_equal(ls_model_config_preset("tiny", &c), LS_OK);
    unsigned targets = (1u << LS_PROJ_K) | (1u << LS_PROJ_O) | (1u << LS_PROJ_DOWN);
    ls_lora a, b;
    ls_lora_init(&a, &c, 5, 2.5f, targets, 1);
    ls_lora_reset(&a, &c, 7);
    for (size_t i = 0; i < a.arena_floats; i++)
        if (a.arena[i] == 0.0f) a.arena[i] = (float)sin((double)i) * 1e-3f; /* B and the head bias too */
    const char *dir = subdir("adapter");
    if (ls_lora_save_for(dir, &a, &c, "/models/tiny") != LS_OK) fail_msg("%s", ls_last_error());
    if (ls_lora_load(dir, &c, &b) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(b.rank, 5);
    assert_true(b.alpha == 2.5f && b.scale == 0.5f);
    assert_int_equal(b.targets, targets);
    assert_int_equal(b.head_bias, 1);
    assert_int_equal(b.arena_floats, a.arena_floats);
    assert_memory_equal(b.arena, a.arena, a.arena_floats * sizeof(float)); /* bit for bit */
    ls_lora_free(&b);

    char *text = read_text(dir, "adapter_config.json");
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_string_equal(cJSON_GetObjectItem(j, "peft_type")->valuestring, "LORA");
    assert_string_equal(cJSON_GetObjectItem(j, "task_type")->valuestring, "CAUSAL_LM");
    assert_int_equal(cJSON_GetObjectItem(j, "r")->valueint, 5);
    assert_true(cJSON_GetObjectItem(j, "lora_alpha")->valuedouble == 2.5);
    assert_string_equal(cJSON_GetObjectItem(j, "bias")->valuestring, "none");
    assert_string_equal(cJSON_GetObjectItem(j, "base_model_name_or_path")->valuestring, "/models/tiny");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "fan_in_fan_out")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "use_rslora")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "inference_mode")));
    const cJSON *tm = cJSON_GetObjectItem(j, "target_modules");
    assert_int_equal(cJSON_GetArraySize(tm), 3);
    assert_string_equal(cJSON_GetArrayItem(tm, 0)->valuestring, "k_proj");
    assert_string_equal(cJSON_GetArrayItem(tm, 2)->valuestring, "down_proj");
    cJSON_Delete(j);
    char path[2048];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    ls_safetensors st;
    assert_int_equal(ls_safetensors_open(path, &st), LS_OK);
    assert_int_equal(st.n_tensors, 2 * 3 * 2);
    const ls_st_tensor *t = ls_safetensors_find(&st, "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, LS_ST_F32);
    assert_true(t->shape[0] == 5 && t->shape[1] == 160);
    ls_safetensors_close(&st);

    /* saved again without a head bias: the stale file goes, and load sees no bias */
    a.head_bias = 0;
    assert_int_equal(ls_lora_save(dir, &a, &c), LS_OK);
    snprintf(path, sizeof path, "%s/lm_head_bias.safetensors", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(ls_lora_load(dir, &c, &b), LS_OK);
    assert_int_equal(b.head_bias, 0);
    assert_memory_equal(b.arena, a.arena, b.arena_floats * sizeof(float));
    ls_lora_free(&b);
    a.head_bias = 1;

    /* the adapter does not fit another model */
    ls_model_config small;
    assert_int_equal(ls_model_config_preset("small", &small), LS_OK);
    assert_int_equal(ls_lora_load(dir, &small, &b), LS_ERR);
    expect_error_has("lora_A.weight' has shape [5, 64], expected [5, 256]");
    assert_null(b.arena);
    ls_lora_free(&a);
}

static void test_lora_broken(void **state) {
    ls_model_config c;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", golden());
    assert_int_equal(ls_model_config_load(path, &c), LS_OK);
    const char *dir = subdir("bad_adapter");
    snprintf(path, sizeof path, "%s/adapter", golden());
    copy_file(path, dir, "adapter_config.json");
    char *good = read_text(dir, "adapter_config.json");
    ls_lora a;
    /* no weights yet */
    assert_int_equal(ls_lora_load(dir, &c, &a), LS_ERR);
    expect_error_has("adapter_model.safetensors: cannot open");
    {
        size_t size;
        char src[4096];
        snprintf(src, sizeof src, "%s/adapter/adapter_model.safetensors", golden());
        char *bytes = ls_read_file(src, &size);
        char dst[2048];
        snprintf(dst, sizeof dst, "%s/adapter_model.safetensors", dir);
        FILE *f = fopen(dst, "wb");
        fwrite(bytes, 1, size, f);
        fclose(f);
        free(bytes);
    }
    assert_int_equal(ls_lora_load(dir, &c, &a), LS_OK);
    ls_lora_free(&a);
    struct {
        const char *from, *to, *message;
    } cases[] = {
        {"\"r\": 4", "\"r\": 0", "'r' is 0"},
        {"\"r\": 4,", "", "missing key 'r'"},
        {"\"lora_alpha\": 8", "\"lora_alpha\": -8", "'lora_alpha' is not a positive number"},
        {"\"v_proj\"", "\"w_proj\"", "target_modules: 'w_proj' is not one of"},
        {"[\n    \"q_proj\",\n    \"v_proj\"\n  ]", "\"all-linear\"", "patterns are not supported"},
        {"\"use_rslora\": false", "\"use_rslora\": true", "use_rslora true is not supported"},
        {"\"bias\": \"none\"", "\"bias\": \"all\"", "bias other than"},
        {"\"LORA\"", "\"IA3\"", "peft_type is not"},
        {"\"r\": 4", "\"r\": 4,,", "not valid JSON"},
        /* the file then lacks what the config asks for, or has more */
        {"\"v_proj\"", "\"k_proj\"", "tensor 'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight' is missing"},
        {"\"r\": 4", "\"r\": 8", "has shape [4, 64], expected [8, 64]"},
        {"[\n    \"q_proj\",\n    \"v_proj\"\n  ]", "[\"q_proj\"]", "unexpected tensor 'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight'"},
    };
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *at = strstr(good, cases[i].from);
        if (!at) fail_msg("fixture lacks %s", cases[i].from);
        size_t n = strlen(good) + strlen(cases[i].to) + 1;
        char *bad = malloc(n);
        snprintf(bad, n, "%.*s%s%s", (int)(at - good), good, cases[i].to, at + strlen(cases[i].from));
        write_file(dir, "adapter_config.json", bad);
        free(bad);
        if (ls_lora_load(dir, &c, &a) != LS_ERR) fail_msg("case %zu accepted", i);
        expect_error_has(cases[i].message);
        assert_null(a.arena);
    }
    write_file(dir, "adapter_config.json", good);
    /* a head bias of the wrong length */
    float bias[10] = {0};
    ls_st_write w = {.name = "lm_head.bias", .dtype = LS_ST_F32, .rank = 1, .shape = {10}, .data = bias};
    snprintf(path, sizeof path, "%s/lm_head_bias.safetensors", dir);
    assert_int_equal(ls_safetensors_write(path, &w, 1, NULL, 0), LS_OK);
    assert_int_equal(ls_lora_load(dir, &c, &a), LS_ERR);
    expect_error_has("tensor 'lm_head.bias' has shape [10], expected [151936]");
    free(good);
}

/* ---------------------------------------------------------------- model init */

static int run_model(int argc, const char **args) {
    char *argv[16];
    for (int i = 0; i < argc; i++) argv[i] = (char *)args[i];
    argv[argc] = NULL;
    return cmd_model(argc, argv);
}

static void test_model_init(void **state) {
    char out1[1024], out2[1024], out3[1024];
    snprintf(out1, sizeof out1, "%s/init/a", temp_dir()); /* parents are created */
    snprintf(out2, sizeof out2, "%s/init/b", temp_dir());
    snprintf(out3, sizeof out3, "%s/init/c", temp_dir());
    const char *a1[] = {"model", "init", "--preset", "tiny", "--out", out1, "--seed", "5"};
    const char *a2[] = {"model", "init", "--preset", "tiny", "--out", out2, "--seed", "5"};
    const char *a3[] = {"model", "init", "--preset", "tiny", "--out", out3, "--seed", "6"};
    assert_int_equal(run_model(8, a1), 0);
    assert_int_equal(run_model(8, a2), 0);
    assert_int_equal(run_model(8, a3), 0);
    ls_model m, ref;
    if (ls_model_load(out1, &m) != LS_OK) fail_msg("%s", ls_last_error());
    ls_model_config tiny;
    assert_int_equal(ls_model_config_preset("tiny", &tiny), LS_OK);
    assert_memory_equal(&m.cfg, &tiny, sizeof tiny);
    /* the same configuration as the golden checkpoint, so the same shapes */
    assert_int_equal(ls_model_load(golden(), &ref), LS_OK);
    assert_int_equal(m.arena_floats, ref.arena_floats);
    assert_memory_equal(&m.cfg, &ref.cfg, sizeof m.cfg);
    ls_model_free(&ref);
    for (int i = 0; i < 64; i++) assert_true(m.final_norm[i] == 1.0f && m.layer[1].mlp_norm[i] == 1.0f);
    double s = 0, s2 = 0;
    size_t n = (size_t)151936 * 64;
    for (size_t i = 0; i < n; i++) s += m.embed[i], s2 += (double)m.embed[i] * m.embed[i];
    assert_true(fabs(s / n) < 1e-3 && fabs(sqrt(s2 / n) - 0.02) < 1e-3);
    int nonzero = 0;
    for (int i = 0; i < 32; i++) nonzero += m.layer[0].bv[i] != 0.0f;
    assert_true(nonzero > 25); /* biases are random */
    ls_model_free(&m);
    /* the same seed gives the same file, another seed another */
    size_t n1, n2, n3;
    char p[2048];
    snprintf(p, sizeof p, "%s/model.safetensors", out1);
    char *f1 = ls_read_file(p, &n1);
    snprintf(p, sizeof p, "%s/model.safetensors", out2);
    char *f2 = ls_read_file(p, &n2);
    snprintf(p, sizeof p, "%s/model.safetensors", out3);
    char *f3 = ls_read_file(p, &n3);
    assert_true(n1 == n2 && n1 == n3);
    assert_memory_equal(f1, f2, n1);
    assert_memory_not_equal(f1, f3, n1);
    free(f1);
    free(f2);
    free(f3);
    /* usage errors */
    const char *bad1[] = {"model", "init", "--preset", "huge", "--out", out1};
    assert_int_equal(run_model(6, bad1), CLI_EXIT_USAGE);
    const char *bad2[] = {"model", "init", "--preset", "tiny"};
    assert_int_equal(run_model(4, bad2), CLI_EXIT_USAGE);
    const char *bad3[] = {"model", "init", "--preset", "tiny", "--out", out1, "--tokenizer", "/nonexistent.json"};
    assert_int_equal(run_model(8, bad3), CLI_EXIT_FAIL);
    expect_error_has("/nonexistent.json");
}

static void test_model_init_small(void **state) {
    char out[1024];
    snprintf(out, sizeof out, "%s/init-small", temp_dir());
    const char *args[] = {"model", "init", "--preset", "small", "--out", out};
    assert_int_equal(run_model(6, args), 0);
    ls_model m;
    if (ls_model_load(out, &m) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(m.cfg.hidden, 256);
    assert_int_equal(m.cfg.layers, 4);
    assert_int_equal(m.arena_floats, ls_model_n_params(&m.cfg));
    ls_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_checkpoint),
        cmocka_unit_test(test_size_table),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_rope),
        cmocka_unit_test(test_sharded_and_broken_checkpoints),
        cmocka_unit_test(test_golden_adapter),
        cmocka_unit_test(test_lora_layout_and_reset),
        cmocka_unit_test(test_lora_save_load),
        cmocka_unit_test(test_lora_broken),
        cmocka_unit_test(test_model_init),
        cmocka_unit_test(test_model_init_small),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
