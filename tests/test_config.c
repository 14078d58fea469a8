/*
 * test_config.c: the trial configuration: defaults, a file with every key, one exact message per
 * error class, --set overrides, round trips, the id hash, paths, validation, and a mutation fuzz
 * of the YAML loader (run it under the sanitizer build too).
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>

#include "lorasweep/common.h"
#include "lorasweep/config.h"
#include "lorasweep/model.h"
#include "testing.h"

/* Every key set to a value that is not its default, each different from the others where the
 * type allows, so that a key reading into the wrong field shows. */
static const char full_yaml[] =
    "# a trial with every key\n"
    "name: full-trial\n"
    "model:\n"
    "  path: models/tiny\n"
    "  tokenizer: tok/tokenizer.json\n"
    "  backend: cpu\n"
    "data:\n"
    "  path: results/demo/lv_sim.h5\n"
    "encoding:\n"
    "  alpha: 0.75\n"
    "  alpha_scope: system\n"
    "  alpha_percentile: 95\n"
    "  alpha_target: 8.5\n"
    "  decimals: 2\n"
    "split:\n"
    "  test_systems: 50\n"
    "  val_fraction: 0.125\n"
    "  seed: 7\n"
    "lora:\n"
    "  rank: 8\n"
    "  alpha: 16\n"
    "  targets: [q_proj, k_proj, down_proj]\n"
    "  head_bias: false\n"
    "  seed: 11\n"
    "train:\n"
    "  ctx: 256\n"
    "  stride: 128\n"
    "  batch_size: 3\n"
    "  max_steps: 500\n"
    "  optimizer: sgd\n"
    "  lr: 3.0e-4\n"
    "  beta1: 0.8\n"
    "  beta2: 0.99\n"
    "  eps: 1e-6\n"
    "  weight_decay: 0.01\n"
    "  momentum: 0.9\n"
    "  grad_clip: 0.5\n"
    "  schedule: cosine\n"
    "  warmup_steps: 20\n"
    "  min_lr_ratio: 0.1\n"
    "  eval_every: 25\n"
    "  val_max_windows: 64\n"
    "  checkpoint_every: 250\n"
    "  seed: 13\n"
    "  threads: 6\n"
    "  ranks_per_trial: 3\n"
    "eval:\n"
    "  systems: 40\n"
    "  context_steps: 60\n"
    "  forecast_steps: 30\n"
    "  samples: 5\n"
    "  greedy: false\n"
    "  temperature: 0.7\n"
    "  top_p: 0.95\n"
    "  top_k: 40\n"
    "  grammar: false\n"
    "  max_new_tokens: 900\n"
    "  seed: 17\n";

static void load_full(ls_trial_config *c) {
    if (ls_config_load_string(full_yaml, strlen(full_yaml), "full.yaml", c) != LS_OK)
        fail_msg("%s", ls_last_error());
}

/* A value of key k different from its current one in c, as YAML text (static buffer). */
static const char *other_value(const ls_trial_config *c, const ls_config_key *k) {
    static char buf[256];
    const void *f = (const char *)c + k->offset;
    switch (k->type) {
    case LS_CONFIG_INT: {
        int v = *(const int *)f;
        snprintf(buf, sizeof buf, "%d", v + 1 <= k->max ? v + 1 : v - 1);
        break;
    }
    case LS_CONFIG_U64: {
        uint64_t v = *(const uint64_t *)f;
        snprintf(buf, sizeof buf, "%" PRIu64, (double)v + 1 <= k->max ? v + 1 : v - 1);
        break;
    }
    case LS_CONFIG_DOUBLE: {
        double v = *(const double *)f, mid = 0.5 * (k->min + k->max);
        snprintf(buf, sizeof buf, "%.17g", v != mid ? mid : 0.5 * (k->min + mid));
        break;
    }
    case LS_CONFIG_AUTO_NUM:
        snprintf(buf, sizeof buf, "%s", *(const double *)f == LS_CONFIG_ALPHA_AUTO ? "0.5" : "auto");
        break;
    case LS_CONFIG_BOOL: snprintf(buf, sizeof buf, "%s", *(const bool *)f ? "false" : "true"); break;
    case LS_CONFIG_STRING: snprintf(buf, sizeof buf, "\"%sx\"", *(char *const *)f); break;
    case LS_CONFIG_ENUM: {
        int n = 0, v = *(const int *)f;
        while (k->names[n]) n++;
        snprintf(buf, sizeof buf, "%s", k->names[(v + 1) % n]);
        break;
    }
    case LS_CONFIG_FLAGS: {
        unsigned m = *(const unsigned *)f ^ 1u;
        size_t o = 0;
        o += (size_t)snprintf(buf + o, sizeof buf - o, "[");
        for (int i = 0; k->names[i]; i++)
            if (m & (1u << i)) o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", o > 1 ? ", " : "", k->names[i]);
        snprintf(buf + o, sizeof buf - o, "]");
        break;
    }
    }
    return buf;
}

/* ---- the table and the defaults ------------------------------------------------------------- */

static void test_table(void **state) {
    size_t n;
    const ls_config_key *keys = ls_config_keys(&n);
    assert_true(n >= 45);
    const char *order[] = {"", "model", "data", "encoding", "split", "lora", "train", "eval"};
    size_t sec = 0;
    ls_trial_config def;
    ls_config_defaults(&def);
    for (size_t i = 0; i < n; i++) {
        const ls_config_key *k = &keys[i];
        /* sections contiguous and in file order */
        const char *dot = strchr(k->key, '.');
        size_t sl = dot ? (size_t)(dot - k->key) : 0;
        while (sec < 8 && (strlen(order[sec]) != sl || strncmp(order[sec], k->key, sl))) sec++;
        if (sec == 8) fail_msg("key %s is out of section order", k->key);
        assert_ptr_equal(ls_config_find(k->key), k);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(keys[j].key, k->key);
            assert_int_not_equal(keys[j].offset, k->offset);
        }
        assert_true(k->doc && k->doc[0] && !strchr(k->doc, '|') && !strchr(k->doc, '\n'));
        const void *f = (const char *)&def + k->offset;
        double v = k->type == LS_CONFIG_INT ? *(const int *)f
                   : k->type == LS_CONFIG_U64 ? (double)*(const uint64_t *)f
                   : k->type == LS_CONFIG_DOUBLE ? *(const double *)f : 0;
        if (k->type == LS_CONFIG_INT || k->type == LS_CONFIG_U64 || k->type == LS_CONFIG_DOUBLE) {
            int lo = (k->flags & LS_CONFIG_MIN_OPEN) ? v > k->min : v >= k->min;
            int hi = (k->flags & LS_CONFIG_MAX_OPEN) ? v < k->max : v <= k->max;
            if (!lo || !hi) fail_msg("default of %s is out of its range", k->key);
            assert_true(k->max <= LS_CONFIG_SEED_MAX);
            if (k->type == LS_CONFIG_INT) assert_true(k->min >= -2147483648.0 && k->max <= 2147483647.0);
        }
    }
    assert_null(ls_config_find("train"));
    assert_null(ls_config_find("train.nope"));
    /* lora.targets names follow ls_proj */
    const ls_config_key *t = ls_config_find("lora.targets");
    assert_string_equal(t->names[LS_PROJ_Q], "q_proj");
    assert_string_equal(t->names[LS_PROJ_V], "v_proj");
    assert_string_equal(t->names[LS_PROJ_GATE], "gate_proj");
    assert_string_equal(t->names[LS_PROJ_DOWN], "down_proj");
    for (int p = 0; p < LS_PROJ_COUNT; p++) assert_string_equal(t->names[p], ls_proj_names[p]);
    assert_null(t->names[LS_PROJ_COUNT]);
    ls_config_free(&def);
}

static void test_defaults(void **state) {
    ls_trial_config c;
    ls_config_defaults(&c);
    assert_string_equal(c.name, "");
    assert_string_equal(c.model.path, "");
    assert_string_equal(c.model.tokenizer, "");
    assert_int_equal(c.model.backend, LS_CONFIG_BACKEND_AUTO);
    assert_string_equal(c.data.path, "");
    assert_true(c.encoding.alpha == LS_CONFIG_ALPHA_AUTO);
    assert_int_equal(c.encoding.alpha_scope, LS_CONFIG_SCOPE_DATASET);
    assert_true(c.encoding.alpha_percentile == 99 && c.encoding.alpha_target == 10);
    assert_int_equal(c.encoding.decimals, 3);
    assert_int_equal(c.split.test_systems, 100);
    assert_true(c.split.val_fraction == 0.2);
    assert_int_equal(c.split.seed, 42);
    assert_int_equal(c.lora.rank, 4);
    assert_true(c.lora.alpha == 0 && ls_config_lora_alpha(&c) == 4);
    assert_int_equal(c.lora.targets, (1u << LS_PROJ_Q) | (1u << LS_PROJ_V));
    assert_true(c.lora.head_bias);
    assert_int_equal(c.lora.seed, 0);
    assert_int_equal(c.train.ctx, 512);
    assert_int_equal(c.train.stride, 0);
    assert_int_equal(ls_config_stride(&c), 256);
    assert_int_equal(c.train.batch_size, 4);
    assert_int_equal(c.train.max_steps, 1000);
    assert_int_equal(c.train.optimizer, LS_CONFIG_OPTIMIZER_ADAMW);
    assert_true(c.train.lr == 1e-5 && c.train.beta1 == 0.9 && c.train.beta2 == 0.999 && c.train.eps == 1e-8);
    assert_true(c.train.weight_decay == 0 && c.train.momentum == 0 && c.train.grad_clip == 1);
    assert_int_equal(c.train.schedule, LS_CONFIG_SCHEDULE_CONSTANT);
    assert_int_equal(c.train.warmup_steps, 0);
    assert_true(c.train.min_lr_ratio == 0);
    assert_int_equal(c.train.eval_every, 100);
    assert_int_equal(c.train.val_max_windows, 0);
    assert_int_equal(c.train.checkpoint_every, 0);
    assert_int_equal(c.train.seed, 0);
    assert_int_equal(c.train.threads, 0);
    assert_int_equal(c.eval.systems, 100);
    assert_int_equal(c.eval.context_steps, 80);
    assert_int_equal(c.eval.forecast_steps, 20);
    assert_int_equal(c.eval.samples, 10);
    assert_false(c.eval.greedy);
    assert_true(c.eval.temperature == 1 && c.eval.top_p == 1);
    assert_int_equal(c.eval.top_k, 0);
    assert_true(c.eval.grammar);
    assert_int_equal(c.eval.max_new_tokens, 0);
    assert_int_equal(c.eval.seed, 0);
    /* the defaults lack the two required paths */
    assert_int_equal(ls_config_validate(&c), LS_ERR);
    assert_string_equal(ls_last_error(), "<defaults>: model.path is required: checkpoint directory "
                                         "(config.json, model.safetensors)");
    /* An empty text, a null document and empty sections are the defaults. */
    const char *empties[] = {"", "# nothing\n", "---\n", "~\n", "model:\ntrain:\n", "{}"};
    for (size_t i = 0; i < sizeof empties / sizeof *empties; i++) {
        ls_trial_config e;
        assert_int_equal(ls_config_load_string(empties[i], strlen(empties[i]), "e.yaml", &e), LS_OK);
        assert_true(ls_config_equal(&c, &e));
        ls_config_free(&e);
    }
    ls_config_free(&c);
    ls_config_free(&c); /* freeing twice is harmless */
}

/* A stable id across runs, machines and versions that keep the table: a change here means every
 * recorded trial id changes (say so in the commit). */
static void test_hash_pinned(void **state) {
    ls_trial_config c;
    ls_config_defaults(&c);
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, ls_config_hash(&c));
    assert_string_equal(hex, "69b3a757f99075fd"); /* since train.ranks_per_trial */
    ls_config_free(&c);
}

static void test_full_file(void **state) {
    ls_trial_config c;
    load_full(&c);
    assert_string_equal(c.name, "full-trial");
    assert_string_equal(c.model.path, "models/tiny");
    assert_string_equal(c.model.tokenizer, "tok/tokenizer.json");
    assert_int_equal(c.model.backend, LS_CONFIG_BACKEND_CPU);
    assert_string_equal(c.data.path, "results/demo/lv_sim.h5");
    assert_true(c.encoding.alpha == 0.75);
    assert_int_equal(c.encoding.alpha_scope, LS_CONFIG_SCOPE_SYSTEM);
    assert_true(c.encoding.alpha_percentile == 95 && c.encoding.alpha_target == 8.5);
    assert_int_equal(c.encoding.decimals, 2);
    assert_int_equal(c.split.test_systems, 50);
    assert_true(c.split.val_fraction == 0.125);
    assert_int_equal(c.split.seed, 7);
    assert_int_equal(c.lora.rank, 8);
    assert_true(c.lora.alpha == 16 && ls_config_lora_alpha(&c) == 16);
    assert_int_equal(c.lora.targets, (1u << LS_PROJ_Q) | (1u << LS_PROJ_K) | (1u << LS_PROJ_DOWN));
    assert_false(c.lora.head_bias);
    assert_int_equal(c.lora.seed, 11);
    assert_int_equal(c.train.ctx, 256);
    assert_int_equal(c.train.stride, 128);
    assert_int_equal(ls_config_stride(&c), 128);
    assert_int_equal(c.train.batch_size, 3);
    assert_int_equal(c.train.max_steps, 500);
    assert_int_equal(c.train.optimizer, LS_CONFIG_OPTIMIZER_SGD);
    assert_true(c.train.lr == 3e-4);
    assert_true(c.train.beta1 == 0.8 && c.train.beta2 == 0.99 && c.train.eps == 1e-6);
    assert_true(c.train.weight_decay == 0.01 && c.train.momentum == 0.9 && c.train.grad_clip == 0.5);
    assert_int_equal(c.train.schedule, LS_CONFIG_SCHEDULE_COSINE);
    assert_int_equal(c.train.warmup_steps, 20);
    assert_true(c.train.min_lr_ratio == 0.1);
    assert_int_equal(c.train.eval_every, 25);
    assert_int_equal(c.train.val_max_windows, 64);
    assert_int_equal(c.train.checkpoint_every, 250);
    assert_int_equal(c.train.seed, 13);
    assert_int_equal(c.train.threads, 6);
    assert_int_equal(c.train.ranks_per_trial, 3);
    assert_int_equal(c.eval.systems, 40);
    assert_int_equal(c.eval.context_steps, 60);
    assert_int_equal(c.eval.forecast_steps, 30);
    assert_int_equal(c.eval.samples, 5);
    assert_false(c.eval.greedy);
    assert_true(c.eval.temperature == 0.7 && c.eval.top_p == 0.95);
    assert_int_equal(c.eval.top_k, 40);
    assert_false(c.eval.grammar);
    assert_int_equal(c.eval.max_new_tokens, 900);
    assert_int_equal(c.eval.seed, 17);
    assert_int_equal(ls_config_validate(&c), LS_OK);
    assert_string_equal(c.source, "full.yaml");

    /* The file names every key of the table with a value other than its default (so a new key
     * must be added here, and the field checks above catch a key stored in the wrong field). */
    ls_trial_config def;
    ls_config_defaults(&def);
    size_t n;
    const ls_config_key *keys = ls_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        if (keys[i].type == LS_CONFIG_BOOL && !strcmp(keys[i].key, "eval.greedy")) continue; /* needs samples 1 */
        char *a = ls_config_value_yaml(&c, &keys[i]), *b = ls_config_value_yaml(&def, &keys[i]);
        if (!strcmp(a, b)) fail_msg("full.yaml leaves %s at its default", keys[i].key);
        free(a);
        free(b);
    }
    ls_config_free(&def);
    ls_config_free(&c);
}

/* Flow style, JSON, dotted top-level keys and quoting give the same config. */
static void test_other_forms(void **state) {
    ls_trial_config a, b;
    const char *block = "model:\n  path: m\ndata:\n  path: d\ntrain:\n  lr: 0.001\n  optimizer: sgd\n"
                        "lora:\n  targets:\n    - v_proj\n    - o_proj\n";
    const char *flow = "{model: {path: m}, data: {path: \"d\"}, train: {lr: 1e-3, optimizer: 'sgd'},"
                       " lora: {targets: [o_proj, v_proj]}}";
    const char *dotted = "model.path: m\ndata.path: d\ntrain.lr: 1.0e-3\ntrain.optimizer: sgd\n"
                         "lora.targets: [v_proj, o_proj]\n";
    assert_int_equal(ls_config_load_string(block, strlen(block), "a.yaml", &a), LS_OK);
    assert_int_equal(ls_config_load_string(flow, strlen(flow), "b.yaml", &b), LS_OK);
    assert_true(ls_config_equal(&a, &b));
    ls_config_free(&b);
    assert_int_equal(ls_config_load_string(dotted, strlen(dotted), "c.yaml", &b), LS_OK);
    assert_true(ls_config_equal(&a, &b));
    assert_int_equal(ls_config_hash(&a), ls_config_hash(&b));
    ls_config_free(&b);
    /* a single name is a one-item list (an empty value or list is refused: test_load_errors) */
    const char *one = "lora: {targets: q_proj}\n";
    assert_int_equal(ls_config_load_string(one, strlen(one), "o.yaml", &b), LS_OK);
    assert_int_equal(b.lora.targets, 1u << LS_PROJ_Q);
    ls_config_free(&b);
    /* integers written as integral numbers, booleans in three spellings */
    const char *nums = "train: {max_steps: 1e3, ctx: 1024.0}\neval: {grammar: FALSE, greedy: True, samples: 1}\n";
    assert_int_equal(ls_config_load_string(nums, strlen(nums), "n.yaml", &b), LS_OK);
    assert_int_equal(b.train.max_steps, 1000);
    assert_int_equal(b.train.ctx, 1024);
    assert_false(b.eval.grammar);
    assert_true(b.eval.greedy);
    ls_config_free(&b);
    ls_config_free(&a);
}

/* ---- errors: one line each, naming file, line and key --------------------------------------- */

typedef struct {
    const char *yaml, *message;
} error_case;

static const error_case error_cases[] = {
    /* out of range, each kind of bound */
    {"model: {path: m}\ntrain:\n  ctx: 512\n  lr: -1\n", "t.yaml:4: train.lr: -1 is out of range (0, 10]"},
    {"train:\n  lr: 0\n", "t.yaml:2: train.lr: 0 is out of range (0, 10]"},
    {"train:\n  beta1: 1\n", "t.yaml:2: train.beta1: 1 is out of range [0, 1)"},
    {"train:\n  ctx: 1\n", "t.yaml:2: train.ctx: 1 is out of range [2, 32768]"},
    {"encoding:\n  decimals: 9\n", "t.yaml:2: encoding.decimals: 9 is out of range [0, 8]"},
    {"lora: {rank: 0}\n", "t.yaml:1: lora.rank: 0 is out of range [1, 1024]"},
    {"train: {lr: 1e999}\n", "t.yaml:1: train.lr: 1e999 is out of range (0, 10]"},
    {"split: {seed: -1}\n", "t.yaml:1: split.seed: -1 is out of range [0, 9007199254740991]"},
    {"split: {seed: 9007199254740993}\n", "t.yaml:1: split.seed: 9007199254740993 is out of range [0, 9007199254740991]"},
    {"encoding:\n  alpha: 0\n", "t.yaml:2: encoding.alpha: 0 is out of range (0, 1e+09] (or auto)"},
    {"train: {ctx: 99999999999999999999}\n", "t.yaml:1: train.ctx: 99999999999999999999 is out of range [2, 32768]"},
    /* wrong types */
    {"train:\n  ctx: \"512\"\n", "t.yaml:2: train.ctx: expected an integer, got the string \"512\""},
    {"train:\n  ctx: 1.5\n", "t.yaml:2: train.ctx: '1.5' is not an integer"},
    {"train:\n  ctx: abc\n", "t.yaml:2: train.ctx: 'abc' is not an integer"},
    {"train:\n  ctx:\n", "t.yaml:2: train.ctx: expected an integer, got an empty value"},
    {"train:\n  lr: 0x10\n", "t.yaml:2: train.lr: '0x10' is not a number"},
    {"train:\n  lr: .inf\n", "t.yaml:2: train.lr: '.inf' is not a number"},
    {"train:\n  lr: [1, 2]\n", "t.yaml:2: train.lr: expected a number, got a list"},
    {"train:\n  lr: {a: 1}\n", "t.yaml:2: train.lr: expected a number, got a mapping"},
    {"encoding: {alpha: automatic}\n", "t.yaml:1: encoding.alpha: 'automatic' is not a number or auto"},
    {"eval:\n  greedy: yes\n", "t.yaml:2: eval.greedy: expected true or false, got 'yes'"},
    {"eval:\n  greedy: 'true'\n", "t.yaml:2: eval.greedy: expected true or false, got the string \"true\""},
    {"name: [a]\n", "t.yaml:1: name: expected a string, got a list"},
    {"model:\n  path: {x: 1}\n", "t.yaml:2: model.path: expected a string, got a mapping"},
    {"name: \"a\\tb\"\n", "t.yaml:1: name: the string contains a control character (byte 1)"},
    {"name: \"a\\0b\"\n", "t.yaml:1: name: the string contains a control character (byte 1)"},
    /* enum and list names */
    {"train:\n  optimizer: adam\n", "t.yaml:2: train.optimizer: 'adam' is not one of adamw, sgd"},
    {"model: {backend: gpu}\n", "t.yaml:1: model.backend: 'gpu' is not one of auto, cpu, cuda"},
    {"train: {schedule: }\n", "t.yaml:1: train.schedule: expected a name, got an empty value"},
    {"lora:\n  targets: [q_proj,\n    x_proj]\n",
     "t.yaml:3: lora.targets: 'x_proj' is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"},
    {"lora:\n  targets: [q_proj, q_proj]\n", "t.yaml:2: lora.targets: q_proj is listed twice"},
    {"lora:\n  targets: [[q_proj]]\n", "t.yaml:2: lora.targets: list items must be names, got a list"},
    {"lora:\n  targets: {q: 1}\n", "t.yaml:2: lora.targets: expected a list of names, got a mapping"},
    /* an empty list (or none) would train an adapter that PEFT and `eval --adapter` cannot load */
    {"name: x\nlora:\n  rank: 4\n  targets: []\n",
     "t.yaml:4: lora.targets: the list is empty: name at least one of q_proj, k_proj, v_proj, o_proj, gate_proj, "
     "up_proj, down_proj (an adapter without a LoRA branch could not be loaded back as a PEFT adapter)"},
    {"lora:\n  targets:\n", "t.yaml:2: lora.targets: the list is empty: name at least one of q_proj, k_proj, "
                            "v_proj, o_proj, gate_proj, up_proj, down_proj (an adapter without a LoRA branch could "
                            "not be loaded back as a PEFT adapter)"},
    /* unknown keys and sections */
    {"train:\n  lrr: 1\n", "t.yaml:2: train.lrr: unknown key (did you mean train.lr?)"},
    {"train:\n  zzzzzz: 1\n", "t.yaml:2: train.zzzzzz: unknown key"},
    {"name: x\ntrian:\n  lr: 1\n", "t.yaml:2: trian: unknown section (did you mean train?)"},
    {"foo: 1\n", "t.yaml:1: foo: unknown section (expected name, model, data, encoding, split, lora, train, eval)"},
    {"train.lrr: 1\n", "t.yaml:1: train.lrr: unknown key (did you mean train.lr?)"},
    {"train:\n  ? [a]\n  : 1\n", "t.yaml:2: train: keys must be names, got a list"},
    /* duplicates */
    {"train:\n  ctx: 5\n  lr: 0.1\n  ctx: 6\n", "t.yaml:4: train.ctx: duplicate key (first on line 2)"},
    {"train: {lr: 0.1}\nmodel: {path: m}\ntrain: {ctx: 8}\n", "t.yaml:3: train: duplicate section (first on line 1)"},
    {"train.lr: 0.1\ntrain:\n  lr: 0.2\n", "t.yaml:3: train.lr: duplicate key (first on line 1)"},
    /* sections that are not mappings; documents that are not mappings */
    {"model: {path: m}\ntrain: 5\n", "t.yaml:2: train: expected a mapping of keys (such as 'lr: 1.0e-4'), got '5'"},
    {"train:\n  - lr\n", "t.yaml:2: train: expected a mapping of keys (such as 'lr: 1.0e-4'), got a list"},
    {"- a\n- b\n", "t.yaml:1: expected a mapping of sections (model:, data:, ...), got a list"},
    {"hello\n", "t.yaml:1: expected a mapping of sections (model:, data:, ...), got 'hello'"},
    {"name: a\n---\nname: b\n", "t.yaml:2: only one YAML document is allowed"},
    /* anchors, aliases, tags */
    {"train:\n  lr: &x 0.1\n", "t.yaml:2: train.lr: anchors (&x) are not supported"},
    {"train:\n  lr: *x\n", "t.yaml:2: train.lr: aliases (*x) are not supported"},
    {"name: !!str a\n", "t.yaml:1: name: tags (tag:yaml.org,2002:str) are not supported"},
    {"train: &t {lr: 0.1}\n", "t.yaml:1: train: anchors (&t) are not supported"},
    /* syntax */
    {"train: {lr: 0.1\n", "t.yaml:2: train: YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping)"},
    {"train:\n  lr: 0.1\n bad\n", "t.yaml:3: YAML syntax error: did not find expected key (while parsing a block mapping)"},
    {"name: \"\xff\"\n", "t.yaml:1: YAML syntax error: invalid leading UTF-8 octet"},
    {"a\tb: 1\n\x01", "t.yaml:2: YAML syntax error: control characters are not allowed"},
};

static void test_errors(void **state) {
    for (size_t i = 0; i < sizeof error_cases / sizeof *error_cases; i++) {
        const error_case *e = &error_cases[i];
        ls_trial_config c;
        size_t n = strlen(e->yaml);
        char *exact = malloc(n ? n : 1);
        memcpy(exact, e->yaml, n);
        int rc = ls_config_load_string(exact, n, "t.yaml", &c);
        free(exact);
        if (rc != LS_ERR) fail_msg("case %zu loaded: %s", i, e->yaml);
        if (strcmp(ls_last_error(), e->message))
            fail_msg("case %zu:\n  got:      %s\n  expected: %s", i, ls_last_error(), e->message);
        assert_null(c.name); /* nothing left to free */
    }
}

static void test_aliases_refused(void **state) {
    /* An alias is refused where it is met, before anything is expanded. */
    const char *yaml = "name: &n x\n";
    ls_trial_config c;
    assert_int_equal(ls_config_load_string(yaml, strlen(yaml), "a.yaml", &c), LS_ERR);
    assert_string_equal(ls_last_error(), "a.yaml:1: name: anchors (&n) are not supported");
    /* an alias as the value, its anchor on a key elsewhere */
    const char *yaml2 = "&k name: x\ntrain: {lr: *k}\n";
    assert_int_equal(ls_config_load_string(yaml2, strlen(yaml2), "a.yaml", &c), LS_ERR);
    assert_string_equal(ls_last_error(), "a.yaml:1: anchors (&k) are not supported");
    const char *yaml3 = "name: x\ntrain: {lr: *k}\n";
    assert_int_equal(ls_config_load_string(yaml3, strlen(yaml3), "a.yaml", &c), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "a.yaml:2: "));
}

static void test_validate(void **state) {
    static const struct {
        const char *key, *value, *message;
    } cases[] = {
        {"data.path", "", "v.yaml: data.path is required: HDF5 data file (/trajectories, /time)"},
        {"train.stride", "300", "v.yaml: train.stride: 300 is more than train.ctx (256): tokens would be skipped"},
        {"train.warmup_steps", "501", "v.yaml: train.warmup_steps: 501 is more than train.max_steps (500)"},
        {"train.ranks_per_trial", "4", "v.yaml: train.batch_size: 3 windows cannot be shared by 4 ranks "
                                       "(train.ranks_per_trial): every rank needs at least one window per step"},
        {"eval.systems", "51", "v.yaml: eval.systems: 51 is more than split.test_systems (50): forecasts are "
                               "made on the test split"},
        {"eval.greedy", "true", "v.yaml: eval.samples: 5 greedy forecasts would all be the same; set "
                                "eval.samples: 1"},
        {"eval.context_steps", "5000", "v.yaml: eval.context_steps + eval.forecast_steps: 5030 steps take at "
                                       "least 50300 tokens at 2 decimals, more than a Qwen2.5 context (32768)"},
        {"eval.max_new_tokens", "299", "v.yaml: eval.max_new_tokens: 299 tokens cannot hold 30 steps (at least "
                                       "300 tokens at 2 decimals)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ls_trial_config c;
        load_full(&c);
        free(c.source);
        c.source = ls_strdup("v.yaml");
        assert_int_equal(ls_config_validate(&c), LS_OK);
        assert_int_equal(ls_config_set(&c, cases[i].key, cases[i].value), LS_OK);
        assert_int_equal(ls_config_validate(&c), LS_ERR);
        if (strcmp(ls_last_error(), cases[i].message))
            fail_msg("case %s:\n  got:      %s\n  expected: %s", cases[i].key, ls_last_error(), cases[i].message);
        ls_config_free(&c);
    }
    /* what is allowed at the edges */
    ls_trial_config c;
    load_full(&c);
    assert_int_equal(ls_config_set(&c, "train.stride", "256"), LS_OK);
    assert_int_equal(ls_config_set(&c, "train.max_steps", "0"), LS_OK);
    assert_int_equal(ls_config_set(&c, "train.warmup_steps", "1000"), LS_OK); /* no training: unused */
    assert_int_equal(ls_config_set(&c, "lora.targets", "[]"), LS_ERR); /* refused where it is written */
    assert_int_equal(ls_config_set(&c, "eval.systems", "0"), LS_OK);
    assert_int_equal(ls_config_set(&c, "eval.context_steps", "5000"), LS_OK); /* no forecasting */
    assert_int_equal(ls_config_validate(&c), LS_OK);
    ls_config_free(&c);
}

/* ---- ls_config_set ------------------------------------------------------------------------ */

static void test_set(void **state) {
    ls_trial_config c;
    ls_config_defaults(&c);
    assert_int_equal(ls_config_set(&c, "train.ctx", "1024"), LS_OK);
    assert_int_equal(c.train.ctx, 1024);
    assert_int_equal(ls_config_set(&c, "split.seed", "9007199254740991"), LS_OK);
    assert_true(c.split.seed == 9007199254740991ULL);
    assert_int_equal(ls_config_set(&c, "train.lr", "3e-4"), LS_OK);
    assert_true(c.train.lr == 3e-4);
    assert_int_equal(ls_config_set(&c, "encoding.alpha", "0.5"), LS_OK);
    assert_true(c.encoding.alpha == 0.5);
    assert_int_equal(ls_config_set(&c, "encoding.alpha", "auto"), LS_OK);
    assert_true(c.encoding.alpha == LS_CONFIG_ALPHA_AUTO);
    assert_int_equal(ls_config_set(&c, "eval.greedy", "true"), LS_OK);
    assert_true(c.eval.greedy);
    assert_int_equal(ls_config_set(&c, "name", "'my trial: #1'"), LS_OK);
    assert_string_equal(c.name, "my trial: #1");
    assert_int_equal(ls_config_set(&c, "name", ""), LS_OK);
    assert_string_equal(c.name, "");
    assert_int_equal(ls_config_set(&c, "train.schedule", "cosine"), LS_OK);
    assert_int_equal(c.train.schedule, LS_CONFIG_SCHEDULE_COSINE);
    assert_int_equal(ls_config_set(&c, "lora.targets", "[up_proj, gate_proj]"), LS_OK);
    assert_int_equal(c.lora.targets, (1u << LS_PROJ_UP) | (1u << LS_PROJ_GATE));
    assert_int_equal(ls_config_set(&c, "lora.targets", "o_proj"), LS_OK);
    assert_int_equal(c.lora.targets, 1u << LS_PROJ_O);
    assert_int_equal(ls_config_set(&c, "lora.targets", "  # nothing\n"), LS_ERR); /* empty: refused */
    assert_int_equal(c.lora.targets, 1u << LS_PROJ_O);

    /* failures name the key, carry no file or line, and leave c unchanged */
    ls_trial_config before;
    ls_config_copy(&before, &c);
    static const struct {
        const char *key, *value, *message;
    } bad[] = {
        {"train.lr", "abc", "train.lr: 'abc' is not a number"},
        {"train.lr", "-1", "train.lr: -1 is out of range (0, 10]"},
        {"train.lr", "", "train.lr: expected a number, got an empty value"},
        {"train.lr", "'1", "train.lr: YAML syntax error: found unexpected end of stream (while scanning a quoted scalar)"},
        {"train.ctx", "1.5", "train.ctx: '1.5' is not an integer"},
        {"train.lrr", "1", "train.lrr: unknown key (did you mean train.lr?)"},
        {"train", "1", "train: unknown key"},
        {"eval.greedy", "1", "eval.greedy: expected true or false, got '1'"},
        {"train.optimizer", "adam", "train.optimizer: 'adam' is not one of adamw, sgd"},
        {"lora.targets", "[q_proj, nope]", "lora.targets: 'nope' is not one of q_proj, k_proj, v_proj, o_proj, "
                                           "gate_proj, up_proj, down_proj"},
        {"name", "a: b", "name: expected a string, got a mapping"},
        {"name", "a\n---\nb", "name: one value only, not several YAML documents"},
        {"train.lr", "&a 1", "train.lr: anchors (&a) are not supported"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ls_config_set(&c, bad[i].key, bad[i].value), LS_ERR);
        if (strcmp(ls_last_error(), bad[i].message))
            fail_msg("set %s=%s:\n  got:      %s\n  expected: %s", bad[i].key, bad[i].value, ls_last_error(),
                     bad[i].message);
        assert_true(ls_config_equal(&c, &before));
    }
    ls_config_free(&before);

    /* every key can be set to another value through its YAML text */
    size_t n;
    const ls_config_key *keys = ls_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char *old = ls_config_value_yaml(&c, &keys[i]);
        const char *v = other_value(&c, &keys[i]);
        if (ls_config_set(&c, keys[i].key, v) != LS_OK) fail_msg("set %s=%s: %s", keys[i].key, v, ls_last_error());
        char *now = ls_config_value_yaml(&c, &keys[i]);
        if (!strcmp(old, now)) fail_msg("set %s=%s changed nothing", keys[i].key, v);
        /* and back to the old value from what the writer printed */
        assert_int_equal(ls_config_set(&c, keys[i].key, old), LS_OK);
        char *back = ls_config_value_yaml(&c, &keys[i]);
        assert_string_equal(back, old);
        free(old);
        free(now);
        free(back);
    }
    ls_config_free(&c);
}

static void test_apply_string(void **state) {
    ls_trial_config c, before;
    load_full(&c);
    const char *grid = "train.lr: 0.01\nlora: {rank: 16}\n";
    assert_int_equal(ls_config_apply_string(&c, grid, strlen(grid), "grid.yaml"), LS_OK);
    assert_true(c.train.lr == 0.01);
    assert_int_equal(c.lora.rank, 16);
    assert_int_equal(c.train.ctx, 256); /* kept from the base */
    ls_config_copy(&before, &c);
    const char *bad = "train.lr: 0.02\nlora: {rank: 0}\n";
    assert_int_equal(ls_config_apply_string(&c, bad, strlen(bad), "grid.yaml"), LS_ERR);
    assert_string_equal(ls_last_error(), "grid.yaml:2: lora.rank: 0 is out of range [1, 1024]");
    assert_true(ls_config_equal(&c, &before));
    assert_true(c.train.lr == 0.01);
    ls_config_free(&before);
    ls_config_free(&c);
}

/* ---- writers, round trips, the hash -------------------------------------------------------- */

static void check_round_trip(const ls_trial_config *c) {
    char *yaml = ls_config_to_yaml(c);
    ls_trial_config back;
    if (ls_config_load_string(yaml, strlen(yaml), "yaml", &back) != LS_OK)
        fail_msg("to_yaml does not load: %s\n%s", ls_last_error(), yaml);
    if (!ls_config_equal(c, &back)) fail_msg("to_yaml round trip differs:\n%s", yaml);
    assert_true(ls_config_hash(c) == ls_config_hash(&back));
    char *again = ls_config_to_yaml(&back);
    assert_string_equal(yaml, again);
    ls_config_free(&back);
    free(again);
    char *json = ls_config_to_json(c);
    if (ls_config_load_string(json, strlen(json), "json", &back) != LS_OK)
        fail_msg("to_json does not load: %s\n%s", ls_last_error(), json);
    if (!ls_config_equal(c, &back)) fail_msg("to_json round trip differs:\n%s", json);
    ls_config_free(&back);
    free(json);
    free(yaml);
}

static void test_round_trip(void **state) {
    ls_trial_config c;
    ls_config_defaults(&c);
    check_round_trip(&c);
    ls_config_free(&c);
    load_full(&c);
    check_round_trip(&c);
    /* awkward values: strings needing escapes, every line-break character YAML knows, numbers at
     * the edges of their ranges and of double precision */
    const char *sets[][2] = {
        {"name", "\"q\\\"uote \\\\ back: #hash 'single' \\u00e9 \\x85nel \\u2028ls \\U0001F600 \\u00a0\""},
        {"model.path", "\"  leading and trailing  \""},
        {"data.path", "\"/abs/p\\u0430th.h5\""},
        {"train.lr", "0.1"},
        {"train.eps", "4.9406564584124654e-324"},
        {"train.weight_decay", "100"},
        {"train.beta2", "0.99999999999999989"},
        {"lora.alpha", "123456.789"},
        {"encoding.alpha", "1e-300"},
        {"encoding.alpha_target", "0.30000000000000004"},
        {"split.seed", "9007199254740991"},
        {"lora.targets", "[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]"},
    };
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (ls_config_set(&c, sets[i][0], sets[i][1]) != LS_OK) fail_msg("%s", ls_last_error());
    assert_string_equal(c.name, "q\"uote \\ back: #hash 'single' \xC3\xA9 \xC2\x85nel \xE2\x80\xA8ls "
                                "\xF0\x9F\x98\x80 \xC2\xA0");
    check_round_trip(&c);
    char *yaml = ls_config_to_yaml(&c);
    /* the escapes are JSON's too; YAML's line breaks (NEL, LS) never appear raw */
    assert_non_null(strstr(yaml, "name: \"q\\\"uote \\\\ back: #hash 'single' \\u00e9 \\u0085nel \\u2028ls "
                                 "\xF0\x9F\x98\x80 \\u00a0\"\n"));
    assert_non_null(strstr(yaml, "  path: \"/abs/p\\u0430th.h5\"\n"));
    char *quoted = ls_config_value_yaml(&c, ls_config_find("name"));
    cJSON *str = cJSON_Parse(quoted); /* a string's YAML text is a JSON string */
    assert_true(cJSON_IsString(str));
    assert_string_equal(str->valuestring, c.name);
    cJSON_Delete(str);
    free(quoted);
    assert_non_null(strstr(yaml, "  eps: 5.0e-324\n"));
    assert_non_null(strstr(yaml, "  lr: 0.1\n"));
    assert_non_null(strstr(yaml, "  weight_decay: 100.0\n"));
    free(yaml);
    ls_config_free(&c);
}

static void test_hash(void **state) {
    ls_trial_config base;
    load_full(&base);
    uint64_t h0 = ls_config_hash(&base);
    assert_true(h0 == ls_config_hash(&base));
    /* Changing any one key changes the id, and all those ids differ. */
    size_t n;
    const ls_config_key *keys = ls_config_keys(&n);
    uint64_t *seen = calloc(n, sizeof *seen);
    for (size_t i = 0; i < n; i++) {
        ls_trial_config c;
        ls_config_copy(&c, &base);
        assert_int_equal(ls_config_set(&c, keys[i].key, other_value(&c, &keys[i])), LS_OK);
        seen[i] = ls_config_hash(&c);
        if (seen[i] == h0) fail_msg("the hash ignores %s", keys[i].key);
        for (size_t j = 0; j < i; j++) assert_true(seen[j] != seen[i]);
        ls_config_free(&c);
    }
    free(seen);
    /* Comments, key order, style and white space do not change it; the source does not either. */
    const char *shuffled =
        "eval: {seed: 17, max_new_tokens: 900, grammar: false, top_k: 40, top_p: 0.95, temperature: 0.70,\n"
        "       greedy: false, samples: 5, forecast_steps: 30, context_steps: 60, systems: 40}\n"
        "train:    # the trainer\n"
        "    ranks_per_trial: 3\n    threads: 6\n    seed: 13\n    checkpoint_every: 250\n    val_max_windows: 64\n"
        "    eval_every: 25\n    min_lr_ratio: 0.10\n    warmup_steps: 20\n    schedule: 'cosine'\n"
        "    grad_clip: .5\n    momentum: 0.9\n    weight_decay: 1e-2\n    eps: 0.000001\n"
        "    beta2: 0.99\n    beta1: 0.8\n    lr: 0.0003\n    optimizer: sgd\n    max_steps: 5e2\n"
        "    batch_size: 3\n    stride: 128\n    ctx: 256\n"
        "lora: {seed: 11, head_bias: false, targets: [down_proj, k_proj, q_proj], alpha: 16.0, rank: 8}\n"
        "split: {seed: 7, val_fraction: 0.125, test_systems: 50}\n"
        "encoding.decimals: 2\nencoding.alpha_target: 8.5\nencoding.alpha_percentile: 95\n"
        "encoding.alpha_scope: system\nencoding.alpha: 0.75\n"
        "data: {path: \"results/demo/lv_sim.h5\"}\n"
        "model:\n  backend: cpu\n  tokenizer: 'tok/tokenizer.json'\n  path: models/tiny\n"
        "name: \"full-trial\"   \n\n\n";
    ls_trial_config c;
    if (ls_config_load_string(shuffled, strlen(shuffled), "other-name.yaml", &c) != LS_OK)
        fail_msg("%s", ls_last_error());
    assert_true(ls_config_equal(&c, &base));
    assert_true(ls_config_hash(&c) == h0);
    ls_config_free(&c);
    ls_config_free(&base);
}

static void test_doc_markdown(void **state) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ls_config_doc_markdown(f);
    fclose(f);
    size_t n;
    const ls_config_key *keys = ls_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char cell[96];
        snprintf(cell, sizeof cell, "| `%s` |", keys[i].key);
        const char *at = strstr(buf, cell);
        if (!at) fail_msg("%s missing from the reference", keys[i].key);
        assert_null(strstr(at + 1, cell));
    }
    assert_non_null(strstr(buf, "| `train.lr` | number | `1.0e-05` | (0, 10] | peak learning rate |\n"));
    assert_non_null(strstr(buf, "| `lora.targets` | list of names | `[q_proj, v_proj]` |"));
    assert_non_null(strstr(buf, "### eval\n"));
    free(buf);
}

/* ---- paths ------------------------------------------------------------------------------- */

static void test_paths(void **state) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/sweep", temp_dir());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/trial.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("model: {path: ../models/tiny}\ndata: {path: /data/lv.h5}\n", f);
    fclose(f);
    ls_trial_config c;
    if (ls_config_load_file(path, &c) != LS_OK) fail_msg("%s", ls_last_error());
    char want[700];
    assert_string_equal(c.model.path, "../models/tiny"); /* as written */
    assert_string_equal(c.base_dir, dir);
    snprintf(want, sizeof want, "%s/../models/tiny", dir);
    assert_string_equal(c.resolved.model_path, want);
    snprintf(want, sizeof want, "%s/../models/tiny/tokenizer.json", dir);
    assert_string_equal(c.resolved.tokenizer, want);
    assert_string_equal(c.resolved.data_path, "/data/lv.h5");
    assert_string_equal(c.source, path);
    /* set: resolves against the file's directory, like the file's own paths */
    assert_int_equal(ls_config_set(&c, "model.tokenizer", "tok.json"), LS_OK);
    snprintf(want, sizeof want, "%s/tok.json", dir);
    assert_string_equal(c.resolved.tokenizer, want);
    uint64_t h = ls_config_hash(&c);
    ls_config_free(&c);

    /* the same text from another directory: other resolved paths, the same id */
    const char *text = "model: {path: ../models/tiny, tokenizer: tok.json}\ndata: {path: /data/lv.h5}\n";
    assert_int_equal(ls_config_load_string(text, strlen(text), NULL, &c), LS_OK);
    assert_string_equal(c.source, "<string>");
    char *cwd = getcwd(NULL, 0);
    assert_string_equal(c.base_dir, cwd);
    snprintf(want, sizeof want, "%s/../models/tiny", cwd);
    assert_string_equal(c.resolved.model_path, want);
    assert_true(ls_config_hash(&c) == h);
    free(cwd);
    ls_config_free(&c);

    /* a file name without a directory resolves against the current directory */
    char old[4096];
    assert_non_null(getcwd(old, sizeof old));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(ls_config_load_file("trial.yaml", &c), LS_OK);
    assert_string_equal(c.base_dir, dir);
    ls_config_free(&c);
    assert_int_equal(chdir(old), 0);

    /* files that cannot be read */
    assert_int_equal(ls_config_load_file("/nonexistent/trial.yaml", &c), LS_ERR);
    assert_string_equal(ls_last_error(), "/nonexistent/trial.yaml: cannot open: No such file or directory");
    assert_int_equal(ls_config_load_file(dir, &c), LS_ERR);
    assert_non_null(strstr(ls_last_error(), ": not a regular file (a directory)"));
}

/* ---- hostile inputs ------------------------------------------------------------------------ */

static void load_exact(const char *text, size_t n, const char *expect_prefix) {
    char *exact = malloc(n ? n : 1);
    memcpy(exact, text, n);
    ls_trial_config c;
    int rc = ls_config_load_string(exact, n, "h.yaml", &c);
    free(exact);
    if (rc != LS_ERR) fail_msg("hostile input of %zu bytes loaded", n);
    if (strncmp(ls_last_error(), expect_prefix, strlen(expect_prefix)))
        fail_msg("expected '%s...', got '%s'", expect_prefix, ls_last_error());
    assert_null(strchr(ls_last_error(), '\n'));
}

static void test_hostile(void **state) {
    /* billion laughs: refused at the first anchor, nothing expanded */
    const char *laughs =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    load_exact(laughs, strlen(laughs), "h.yaml:1: a: unknown section");
    const char *laughs2 = "lora:\n  targets: &a [q_proj]\n  seed: *a\n";
    load_exact(laughs2, strlen(laughs2), "h.yaml:2: lora.targets: anchors (&a) are not supported");

    /* deep nesting, in flow and block style, at every level */
    size_t depth = 200000, n = 0;
    char *deep = malloc(2 * depth + 64);
    n += (size_t)sprintf(deep, "train:\n  lr: ");
    for (size_t i = 0; i < depth; i++) deep[n++] = '[';
    load_exact(deep, n, "h.yaml:2: train.lr: expected a number, got a list");
    n = 0;
    for (size_t i = 0; i < depth; i++) deep[n++] = '[';
    load_exact(deep, n, "h.yaml:1: expected a mapping of sections");
    n = 0;
    for (size_t i = 0; i < depth; i++) deep[n++] = '{';
    load_exact(deep, n, "h.yaml:1: ");
    n = 0;
    for (size_t i = 0; i < 500; i++) n += (size_t)sprintf(deep + n, "%*sk:\n", (int)i, ""); /* 126 kB */
    load_exact(deep, n, "h.yaml:1: k: unknown section");
    n = (size_t)sprintf(deep, "lora:\n  targets: ");
    for (size_t i = 0; i < 1000; i++) n += (size_t)sprintf(deep + n, "- ");
    load_exact(deep, n, "h.yaml:2: ");
    free(deep);

    /* too large: refused before parsing */
    size_t big = (size_t)LS_CONFIG_MAX_BYTES + 1;
    char *huge = malloc(big);
    memset(huge, '#', big);
    load_exact(huge, big, "h.yaml: too large (1048577 bytes");
    /* just under the limit: comments only, loads */
    ls_trial_config c;
    huge[big - 2] = '\n';
    assert_int_equal(ls_config_load_string(huge, big - 1, "h.yaml", &c), LS_OK);
    ls_config_free(&c);
    /* a long string, a long key, a long list, a long number */
    size_t o = (size_t)sprintf(huge, "name: ");
    memset(huge + o, 'x', LS_CONFIG_MAX_STRING + 1);
    load_exact(huge, o + LS_CONFIG_MAX_STRING + 1, "h.yaml:1: name: the string is too long (4097 bytes");
    memset(huge, 'k', 100000);
    memcpy(huge + 100000, ": 1\n", 4);
    load_exact(huge, 100004, "h.yaml:1: expected a mapping of sections (model:, data:, ...), got 'kkkk"); /* no key: over 1024 */
    o = (size_t)sprintf(huge, "lora: {targets: [");
    for (int i = 0; i < 50000; i++) o += (size_t)sprintf(huge + o, "q_proj, ");
    load_exact(huge, o, "h.yaml:1: lora.targets: q_proj is listed twice");
    o = (size_t)sprintf(huge, "train: {ctx: ");
    memset(huge + o, '9', 500000);
    load_exact(huge, o + 500000, "h.yaml:1: train.ctx: 99999");
    free(huge);

    /* NUL bytes, and a text that is not NUL-terminated at all */
    load_exact("name: a\0b\n", 10, "h.yaml:1: YAML syntax error: control characters are not allowed");
    load_exact("train: {lr: 0.1", 15, "h.yaml:");
}

/* Mutation fuzz: random damage to a valid file, parsed from buffers of exactly its size (ASan sees
 * any overread), never crashes; a failure is one line naming the file; whatever still loads
 * round-trips through the writer and validates without crashing. */
static void test_fuzz_mutations(void **state) {
    /* two starting points: the block-style file and the same trial as JSON (flow style) */
    ls_trial_config full;
    load_full(&full);
    char *json = ls_config_to_json(&full);
    ls_config_free(&full);
    const char *bases[2] = {full_yaml, json};
    unsigned seed = 20251125;
    int loaded = 0, iters = 20000;
    static const char syntax[] = ":-[]{},#&*!|>'\"\n ?%@`\\.0e";
    for (int iter = 0; iter < iters; iter++) {
        const char *base = bases[iter & 1];
        size_t len;
        char *exact = mutated_copy(base, strlen(base), syntax, &seed, &len);
        ls_trial_config c;
        if (ls_config_load_string(exact, len, "fuzz.yaml", &c) == LS_OK) {
            loaded++;
            check_round_trip(&c);
            (void)ls_config_validate(&c);
            ls_config_free(&c);
        } else {
            const char *msg = ls_last_error();
            if (strncmp(msg, "fuzz.yaml:", 10) || strchr(msg, '\n')) fail_msg("bad message: %s", msg);
            assert_null(c.name);
        }
        free(exact);
    }
    free(json);
    print_message("fuzz: %d of %d mutated files still loaded\n", loaded, iters);
    assert_true(loaded > iters / 50);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_hash_pinned),    cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_other_forms),    cmocka_unit_test(test_errors),
        cmocka_unit_test(test_aliases_refused), cmocka_unit_test(test_validate),
        cmocka_unit_test(test_set),            cmocka_unit_test(test_apply_string),
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_hash),
        cmocka_unit_test(test_doc_markdown),   cmocka_unit_test(test_paths),
        cmocka_unit_test(test_hostile),        cmocka_unit_test(test_fuzz_mutations),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
