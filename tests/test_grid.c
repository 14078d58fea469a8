/*
 * test_grid.c: grid files: loading the course experiment, expansion (counts, order, overrides,
 * ids equal to the equivalent trial file's), winners, the budget plan, every error class with its
 * exact message and line, the trial cap, the shipped grid files, sampled stages (bounds, the same
 * configurations every time, a KS test of log_uniform, Sobol points against published values),
 * repeats (seeds, selection by the mean, the budget by configuration) and their bad inputs, and a
 * mutation fuzz of the loader from exact-size buffers (run it under the sanitizer build too).
 */
#include <inttypes.h>
#include <math.h>
#include <time.h>

#include "lorasweep/common.h"
#include "lorasweep/config.h"
#include "lorasweep/grid.h"
#include "testing.h"

static const char course_yaml[] =
    "# the course experiment\n"
    "name: course\n"
    "budget_flops: 1e17\n"
    "base:\n"
    "  model: {path: ../models/q}\n"
    "  data:\n"
    "    path: ../results/lv.h5\n"
    "  train: {ctx: 512, max_steps: 100}\n"
    "  eval.systems: 10\n"
    "stages:\n"
    "  - name: lr_rank\n"
    "    grid:\n"
    "      train.lr: [1e-5, 5e-5, 1e-4]\n"
    "      lora.rank: [2, 4, 8]\n"
    "  - name: ctx\n"
    "    select: {from: lr_rank, metric: final_val_loss, keep: [train.lr, lora.rank]}\n"
    "    grid:\n"
    "      train.ctx: [128, 512, 768]\n"
    "  - name: final\n"
    "    select: {from: ctx, keep: [train.lr, lora.rank, train.ctx]}\n"
    "    grid: {train.max_steps: 400}\n";

/* The same grid written differently: flow style, other comments, other number spellings. */
static const char course_flow[] =
    "name: other-name   # the name is not part of the identity\n"
    "base: {data.path: \"../results/lv.h5\", model.path: ../models/q, eval: {systems: 10},\n"
    "       train: {max_steps: 1e2, ctx: 512.0}}\n"
    "stages: [{name: lr_rank, grid: {train.lr: [0.00001, 0.00005, 0.0001], lora.rank: [2, 4, 8]}},\n"
    "         {name: ctx, grid: {train.ctx: [128, 512, 768]},\n"
    "          select: {keep: [train.lr, lora.rank], from: lr_rank}},\n"
    "         {name: final, select: {from: ctx, keep: [train.lr, lora.rank, train.ctx], metric: final_val_loss},\n"
    "          grid: {train.max_steps: [400]}}]\n";

static void load_ok(const char *yaml, ls_grid *g) {
    if (ls_grid_load_string(yaml, strlen(yaml), "g.yaml", "/grids", g) != LS_OK) fail_msg("%s", ls_last_error());
}

static void test_load_course(void **state) {
    (void)state;
    ls_grid g;
    load_ok(course_yaml, &g);
    assert_string_equal(g.name, "course");
    assert_string_equal(g.results_path, "results/course.h5");
    assert_true(g.budget_flops == 1e17);
    assert_int_equal(g.max_attempts, 3); /* the default */
    assert_int_equal(g.n_stages, 3);
    assert_int_equal(g.n_trials, 13);
    assert_string_equal(g.stages[0].name, "lr_rank");
    assert_int_equal(g.stages[0].n_trials, 9);
    assert_int_equal(g.stages[0].n_axes, 2);
    assert_int_equal(g.stages[0].select_from, -1);
    assert_string_equal(g.stages[0].axes[0].key->key, "train.lr");
    assert_int_equal(g.stages[0].axes[0].line, 13);
    assert_string_equal(g.stages[0].axes[0].values[0], "1.0e-05");
    assert_string_equal(g.stages[0].axes[0].values[2], "0.0001");
    assert_int_equal(g.stages[1].n_trials, 3);
    assert_int_equal(g.stages[1].select_from, 0);
    assert_int_equal(g.stages[1].metric, LS_GRID_METRIC_FINAL_VAL_LOSS);
    assert_int_equal(g.stages[1].n_keep, 2);
    assert_string_equal(g.stages[1].keep[1]->key, "lora.rank");
    assert_int_equal(g.stages[2].n_trials, 1);
    assert_int_equal(g.stages[2].select_from, 1);
    assert_string_equal(g.stages[2].axes[0].values[0], "400");
    assert_int_equal(g.base.train.ctx, 512);
    assert_int_equal(g.base.eval.systems, 10);
    assert_string_equal(g.base.resolved.model_path, "/grids/../models/q");
    assert_int_equal(ls_grid_stage_find(&g, "ctx"), 1);
    assert_int_equal(ls_grid_stage_find(&g, "nope"), -1);

    /* the identity: the same grid written differently, or renamed, has the same hash */
    ls_grid h;
    load_ok(course_flow, &h);
    assert_string_equal(g.canonical, h.canonical);
    assert_true(g.hash == h.hash);
    ls_grid_free(&h);
    /* a different value, base key or select changes it */
    const char *changes[][2] = {{"[1e-5, 5e-5, 1e-4]", "[1e-5, 5e-5, 2e-4]"},
                                {"max_steps: 100}", "max_steps: 101}"},
                                {"metric: final_val_loss", "metric: mse"},
                                {"[128, 512, 768]", "[128, 768, 512]"}};
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        char buf[2048];
        const char *at = strstr(course_yaml, changes[i][0]);
        assert_non_null(at);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - course_yaml), course_yaml, changes[i][1],
                 at + strlen(changes[i][0]));
        load_ok(buf, &h);
        assert_true(h.hash != g.hash);
        ls_grid_free(&h);
    }
    ls_grid_free(&g);
}

/* The trial file equivalent to a grid trial: the base's keys plus the overrides. */
static uint64_t trial_file_hash(int ctx, const char *extra) {
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "model: {path: ../models/q}\ndata: {path: ../results/lv.h5}\ntrain: {ctx: %d, max_steps: 100}\n"
             "eval: {systems: 10}\n%s",
             ctx, extra);
    ls_trial_config c;
    if (ls_config_load_string(yaml, strlen(yaml), "t.yaml", &c) != LS_OK) fail_msg("%s", ls_last_error());
    uint64_t h = ls_config_hash(&c);
    ls_config_free(&c);
    return h;
}

static void test_expand(void **state) {
    (void)state;
    ls_grid g;
    load_ok(course_yaml, &g);
    ls_grid_trial *t;
    size_t n;
    assert_int_equal(ls_grid_expand(&g, 0, NULL, &t, &n), LS_OK);
    assert_int_equal(n, 9);
    static const double lrs[] = {1e-5, 5e-5, 1e-4};
    static const int ranks[] = {2, 4, 8};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t[i].index, i);
        assert_int_equal(t[i].stage_index, 0);
        assert_string_equal(t[i].stage, "lr_rank");
        assert_true(t[i].config.train.lr == lrs[i / 3]); /* the first axis varies slowest */
        assert_int_equal(t[i].config.lora.rank, ranks[i % 3]);
        assert_int_equal(t[i].config.train.ctx, 512);
        assert_true(t[i].id == ls_config_hash(&t[i].config));
        for (size_t j = 0; j < i; j++) assert_true(t[i].id != t[j].id);
        assert_string_equal(t[i].config.resolved.data_path, "/grids/../results/lv.h5");
    }
    assert_string_equal(t[0].overrides, "train.lr=1.0e-05 lora.rank=2");
    assert_string_equal(t[5].overrides, "train.lr=5.0e-05 lora.rank=8");
    /* the id is the equivalent trial file's */
    assert_true(t[5].id == trial_file_hash(512, "train.lr: 5e-5\nlora.rank: 8\n"));
    assert_true(t[0].id == trial_file_hash(512, "lora: {rank: 2}\ntrain.lr: 0.00001\n"));
    /* stable across loads */
    ls_grid g2;
    load_ok(course_flow, &g2);
    ls_grid_trial *t2;
    size_t n2;
    assert_int_equal(ls_grid_expand(&g2, 0, NULL, &t2, &n2), LS_OK);
    for (size_t i = 0; i < n; i++) assert_true(t[i].id == t2[i].id);
    ls_grid_trials_free(t2, n2);
    ls_grid_free(&g2);

    /* stage ctx on the winner trial 4 (lr 5e-5, rank 4) */
    ls_grid_trial *c;
    size_t nc;
    assert_int_equal(ls_grid_expand(&g, 1, NULL, &c, &nc), LS_ERR);
    assert_string_equal(ls_last_error(), "g.yaml:15: stage ctx: needs the winner of stage lr_rank");
    assert_null(c);
    assert_int_equal(ls_grid_expand(&g, 0, &t[4].config, &c, &nc), LS_ERR);
    assert_string_equal(ls_last_error(), "g.yaml:11: stage lr_rank: has no select clause, so takes no winner");
    assert_int_equal(ls_grid_expand(&g, 7, NULL, &c, &nc), LS_ERR);
    assert_string_equal(ls_last_error(), "g.yaml: no stage 7 (the grid has 3)");
    assert_int_equal(ls_grid_expand(&g, 1, &t[4].config, &c, &nc), LS_OK);
    assert_int_equal(nc, 3);
    static const int ctxs[] = {128, 512, 768};
    for (size_t i = 0; i < nc; i++) {
        assert_true(c[i].config.train.lr == 5e-5);
        assert_int_equal(c[i].config.lora.rank, 4);
        assert_int_equal(c[i].config.train.ctx, ctxs[i]);
        assert_int_equal(c[i].config.train.max_steps, 100);
        assert_int_equal(c[i].stage_index, 1);
    }
    assert_string_equal(c[0].overrides, "train.lr=5.0e-05 lora.rank=4 train.ctx=128");
    /* the ctx-512 trial is the winner itself: same keys, same id */
    assert_true(c[1].id == t[4].id);
    assert_true(c[2].id == trial_file_hash(768, "train.lr: 5e-5\nlora.rank: 4\n"));

    /* the final stage: one trial, longer */
    ls_grid_trial *f;
    size_t nf;
    assert_int_equal(ls_grid_expand(&g, 2, &c[2].config, &f, &nf), LS_OK);
    assert_int_equal(nf, 1);
    assert_int_equal(f[0].config.train.ctx, 768);
    assert_int_equal(f[0].config.train.max_steps, 400);
    assert_string_equal(f[0].overrides, "train.lr=5.0e-05 lora.rank=4 train.ctx=768 train.max_steps=400");
    ls_grid_trials_free(f, nf);
    ls_grid_trials_free(c, nc);
    ls_grid_trials_free(t, n);
    ls_grid_free(&g);
}

static void test_select(void **state) {
    (void)state;
    ls_grid g;
    load_ok(course_yaml, &g);
    ls_grid_trial *t;
    size_t n, w = 99;
    assert_int_equal(ls_grid_expand(&g, 0, NULL, &t, &n), LS_OK);
    ls_grid_result r[5];
    for (int i = 0; i < 5; i++) r[i].metric[0] = r[i].metric[1] = r[i].metric[2] = NAN;
    r[0].id = t[7].id, r[0].metric[LS_GRID_METRIC_FINAL_VAL_LOSS] = 0.5, r[0].metric[LS_GRID_METRIC_MSE] = 3;
    r[1].id = t[2].id, r[1].metric[LS_GRID_METRIC_FINAL_VAL_LOSS] = 0.5, r[1].metric[LS_GRID_METRIC_MSE] = 2;
    r[2].id = t[3].id, r[2].metric[LS_GRID_METRIC_FINAL_VAL_LOSS] = NAN, r[2].metric[LS_GRID_METRIC_MSE] = 1;
    r[3].id = 12345, r[3].metric[LS_GRID_METRIC_FINAL_VAL_LOSS] = 0.1; /* not a trial of this stage */
    r[4].id = t[8].id, r[4].metric[LS_GRID_METRIC_FINAL_VAL_LOSS] = 0.7, r[4].metric[LS_GRID_METRIC_MAE] = 0.2;
    assert_int_equal(ls_grid_select(t, n, r, 5, LS_GRID_METRIC_FINAL_VAL_LOSS, &w), LS_OK);
    assert_int_equal(w, 2); /* tie of 0.5: the lower index; NaN and foreign ids ignored */
    assert_int_equal(ls_grid_select(t, n, r, 5, LS_GRID_METRIC_MSE, &w), LS_OK);
    assert_int_equal(w, 3);
    assert_int_equal(ls_grid_select(t, n, r, 5, LS_GRID_METRIC_MAE, &w), LS_OK);
    assert_int_equal(w, 8);
    assert_int_equal(ls_grid_select(t, n, r, 3, LS_GRID_METRIC_MAE, &w), LS_ERR);
    assert_string_equal(ls_last_error(), "stage lr_rank: no trial has a mae");
    assert_int_equal(ls_grid_select(t, n, NULL, 0, LS_GRID_METRIC_FINAL_VAL_LOSS, &w), LS_ERR);
    assert_string_equal(ls_last_error(), "stage lr_rank: no trial has a final_val_loss");
    assert_string_equal(ls_grid_metric_names[LS_GRID_METRIC_MSE], "mse");
    ls_grid_trials_free(t, n);
    ls_grid_free(&g);
}

static void test_budget(void **state) {
    (void)state;
    const double est[] = {1, 5, 3, 5, NAN, 0.5};
    ls_grid_budget_entry e[6];
    double left = 9.5;
    ls_grid_budget_plan(est, 6, &left, e);
    /* largest first, ties by index: 1 (5, left 4.5), 3 (5 > 4.5: skipped), 2 (3, left 1.5), 0 (1,
     * left 0.5), 5 (0.5, left 0), then the one without an estimate */
    const size_t order[] = {1, 3, 2, 0, 5, 4};
    const int skipped[] = {0, 1, 0, 0, 0, 1};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(e[i].trial, order[i]);
        assert_int_equal(e[i].skipped, skipped[i]);
    }
    assert_true(left == 0);
    assert_string_equal(e[1].reason, "estimated 5 FLOPS, 4.5 left of the budget");
    assert_string_equal(e[5].reason, "no FLOPS estimate");
    assert_string_equal(e[0].reason, "");
    left = INFINITY;
    ls_grid_budget_plan(est, 4, &left, e);
    for (int i = 0; i < 4; i++) assert_int_equal(e[i].skipped, 0);
    left = 1e17;
    const double big[] = {3.2e16, 8e16, 1e15};
    ls_grid_budget_plan(big, 3, &left, e);
    assert_int_equal(e[0].trial, 1);
    assert_int_equal(e[1].trial, 0);
    assert_int_equal(e[1].skipped, 1);
    assert_string_equal(e[1].reason, "estimated 3.2e+16 FLOPS, 2e+16 left of the budget");
    assert_int_equal(e[2].skipped, 0);
}

/* Base of the error cases: a valid one-stage grid; each case replaces or adds text. */
static const char small_yaml[] =
    "name: small\n"                                 /* 1 */
    "base:\n"                                       /* 2 */
    "  model: {path: m}\n"                          /* 3 */
    "  data: {path: d.h5}\n"                        /* 4 */
    "grid:\n"                                       /* 5 */
    "  train.lr: [1e-4, 1e-3]\n"                    /* 6 */
    "  lora.rank: [2, 4]\n";                        /* 7 */

static const char *load_error(const char *yaml) {
    ls_grid g;
    if (ls_grid_load_string(yaml, strlen(yaml), "g.yaml", "/grids", &g) == LS_OK) {
        ls_grid_free(&g);
        fail_msg("loaded: %s", yaml);
    }
    assert_null(g.name);
    assert_null(g.stages);
    return ls_last_error();
}

static void test_errors(void **state) {
    (void)state;
    ls_grid g;
    load_ok(small_yaml, &g);
    assert_int_equal(g.n_stages, 1);
    assert_string_equal(g.stages[0].name, "main");
    assert_int_equal(g.n_trials, 4);
    ls_grid_free(&g);

    static const char *const cases[][2] = {
        /* axes */
        {"  train.lrr: [1]\n", "g.yaml:8: train.lrr: unknown key (did you mean train.lr?)"},
        {"  lora.rank2: [1]\n", "g.yaml:8: lora.rank2: unknown key (did you mean lora.rank?)"},
        {"  train.ctx: [\"512\"]\n", "g.yaml:8: train.ctx: expected an integer, got the string \"512\""},
        {"  train.ctx: [64, x]\n", "g.yaml:8: train.ctx: 'x' is not an integer"},
        {"  train.ctx: [65536]\n", "g.yaml:8: train.ctx: 65536 is out of range [2, 32768]"},
        {"  lora.alpha: [-1]\n", "g.yaml:8: lora.alpha: -1 is out of range [0, 1e+06]"},
        {"  train.ctx: []\n", "g.yaml:8: train.ctx: the axis has no values"},
        {"  train.ctx:\n", "g.yaml:8: train.ctx: the axis has no values"},
        {"  train.ctx: {a: 1}\n", "g.yaml:8: train.ctx: expected a list of values, got a mapping"},
        {"  train.ctx: [[1, 2]]\n", "g.yaml:8: train.ctx: expected an integer, got a list"},
        {"  train.ctx: [[[1]]]\n", "g.yaml:8: train.ctx: expected a name in the list, got a list"},
        {"  train.lr: [1]\n", "g.yaml:8: train.lr: duplicate axis (first on line 6)"},
        {"  train.ranks_per_trial: [2]\n", "g.yaml:8: train.ranks_per_trial: cannot be an axis: a sweep runs every "
                                          "trial on the same number of ranks; set it in base"},
        {"  train.ctx: [128, 128.0]\n", "g.yaml:8: train.ctx: 128 is listed twice"},
        {"  train.ctx: [64, 128]\n  train.stride: [100]\n",
         "g.yaml:5: stage main (train.lr=0.0001 lora.rank=2 train.ctx=64 train.stride=100): train.stride: 100 is "
         "more than train.ctx (64): tokens would be skipped"},
        {"  lora.targets: [[q_proj, k_proj], v_proj, [bad]]\n",
         "g.yaml:8: lora.targets: 'bad' is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"},
        {"  train.ctx: &a [64]\n", "g.yaml:8: train.ctx: anchors (&a) are not supported"},
        {"  train.ctx: [!!int 64]\n", "g.yaml:8: train.ctx: tags (tag:yaml.org,2002:int) are not supported"},
        /* top level */
        {"grdi: {}\n", "g.yaml:8: grdi: unknown key (expected name, budget_flops, max_attempts, base, grid, stages; or method, trials, "
         "seed, parameters, repeats, early_stopping)"},
        {"max_attempts: 0\n", "g.yaml:8: max_attempts: 0 is out of range [1, inf)"},
        {"max_attempts: 2.5\n", "g.yaml:8: max_attempts: 2.5 is not a whole number in [1, 1000]"},
        {"max_attempts: many\n", "g.yaml:8: max_attempts: 'many' is not a number"},
        {"name: again\n", "g.yaml:8: name: duplicate key (first on line 1)"},
        {"budget_flops: -1\n", "g.yaml:8: budget_flops: -1 is out of range (0, inf)"},
        {"budget_flops: lots\n", "g.yaml:8: budget_flops: 'lots' is not a number"},
        {"budget_flops: \"1e17\"\n", "g.yaml:8: budget_flops: expected a number of FLOPS (such as 1e17), got the string \"1e17\""},
        {"stages: []\n", "g.yaml:8: stages: give either grid or stages, not both (grid on line 5)"},
        {"---\nname: x\n", "g.yaml:8: only one YAML document is allowed"},
        {"  train.ctx: [64, 128\n", "g.yaml:9: train.ctx: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[4096];
        snprintf(buf, sizeof buf, "%s%s", small_yaml, cases[i][0]);
        const char *msg = load_error(buf);
        if (strcmp(msg, cases[i][1])) fail_msg("case %zu:\n  got  %s\n  want %s", i, msg, cases[i][1]);
    }

    /* whole files */
    static const char *const files[][2] = {
        {"", "g.yaml:1: the file is empty"},
        {"- 1\n", "g.yaml:1: expected a mapping (name, budget_flops, max_attempts, base, grid or stages), got a list"},
        {"grid: {train.lr: [1e-4]}\n", "g.yaml:1: name: missing: the sweep's name (results go to results/<name>.h5)"},
        {"name: a\n", "g.yaml:1: grid: missing: give grid (axes), parameters (a sampled search) or stages"},
        {"name: a/b\ngrid: {}\n",
         "g.yaml:1: name: 'a/b' is not a name (1 to 64 of A-Z a-z 0-9 _ - ., not starting with '.')"},
        {"name: a\nbase: {model: {path: m}, data: {path: d}}\ngrid: {}\n", NULL}, /* one trial, the base */
        {"name: a\ngrid: {}\n", "g.yaml:2: stage main (): model.path is required: checkpoint directory (config.json, "
                                "model.safetensors)"},
        /* base */
        {"name: a\nbase:\n  model: {pth: m}\ngrid: {}\n", "g.yaml:3: model.pth: unknown key (did you mean model.path?)"},
        {"name: a\nbase:\n  modl: {path: m}\ngrid: {}\n", "g.yaml:3: modl: unknown section (expected name, model, data, encoding, split, lora, train, eval, or a "
                                                  "dotted key such as train.lr)"},
        {"name: a\nbase:\n  lora: {rank: 0}\ngrid: {}\n", "g.yaml:3: lora.rank: 0 is out of range [1, 1024]"},
        {"name: a\nbase:\n  train: {lr: -1e-4}\ngrid: {}\n", "g.yaml:3: train.lr: -1e-4 is out of range (0, 10]"},
        {"name: a\nbase:\n  train: {lr: 1e-4}\n  train.lr: 1e-3\ngrid: {}\n",
         "g.yaml:4: train.lr: duplicate key (first on line 3)"},
        {"name: a\nbase:\n  train: {}\n  train: {}\ngrid: {}\n", "g.yaml:4: train: duplicate section (first on line 3)"},
        {"name: a\nbase:\n  train: 3\ngrid: {}\n",
         "g.yaml:3: train: expected a mapping of keys (such as 'lr: 1.0e-4'), got '3'"},
        {"name: a\nbase: [1]\ngrid: {}\n", "g.yaml:2: base: expected a mapping of trial keys, got a list"},
        {"name: a\nbase: {model: {path: *x}}\ngrid: {}\n", "g.yaml:2: model.path: aliases (*x) are not supported"},
        {"name: a\nbase: {model: {path: &x m}}\ngrid: {}\n", "g.yaml:2: model.path: anchors (&x) are not supported"},
        /* stages */
        {"name: a\nstages: []\n", "g.yaml:2: stages: the list is empty"},
        {"name: a\nstages: [{grid: {}}]\n", "g.yaml:2: stages: stage 1 has no name"},
        {"name: a\nstages: [{name: s, nmae: t}]\n", "g.yaml:2: nmae: unknown key in a stage (expected name, grid, select, method, trials, seed, "
                                                    "parameters, repeats, early_stopping)"},
        {"name: a\nstages:\n  - name: s\n  - name: s\n", "g.yaml:4: name: stage 's' is defined twice (first on line 3)"},
        {"name: a\nstages:\n  - name: s\n    select: {from: s, keep: [train.lr]}\n",
         "g.yaml:4: select.from: the first stage has no earlier stage to select from"},
        {"name: a\nstages:\n  - name: s\n  - name: t\n    select: {from: u, keep: [train.lr]}\n",
         "g.yaml:5: select.from: 'u' is not an earlier stage"},
        {"name: a\nstages:\n  - name: s\n  - name: t\n    select: {from: s, metric: loss, keep: [train.lr]}\n",
         "g.yaml:5: select.metric: 'loss' is not one of final_val_loss, mse, mae"},
        {"name: a\nstages:\n  - name: s\n  - name: t\n    select: {from: s, keep: [train.lrr]}\n",
         "g.yaml:5: train.lrr: unknown key (did you mean train.lr?)"},
        {"name: a\nstages:\n  - name: s\n  - name: t\n    select: {from: s, keep: []}\n",
         "g.yaml:5: select.keep: name at least one key to copy from the winner"},
        {"name: a\nstages:\n  - name: s\n  - name: t\n    select: {from: s}\n",
         "g.yaml:5: select.keep: missing: the keys copied from the winner (such as [train.lr])"},
        {"name: a\nstages:\n  - name: s\n  - name: t\n    select: {keep: [train.lr]}\n",
         "g.yaml:5: select.from: missing: the earlier stage whose best trial this one starts from"},
        {"name: a\nstages:\n  - name: s\n  - name: t\n    select: {from: s, keep: [train.lr, train.lr]}\n",
         "g.yaml:5: select.keep: train.lr is listed twice"},
        {"name: a\nstages:\n  - name: s\n  - name: t\n    select: {from: s, keep: [train.lr], to: x}\n",
         "g.yaml:5: select.to: unknown key (expected from, metric, keep)"},
        {"name: a\nstages:\n  - name: s\n  - name: t\n    select: {from: s, keep: [train.ctx]}\n"
         "    grid: {train.ctx: [64]}\n",
         "g.yaml:5: select.keep: train.ctx is also an axis of stage t (line 6)"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!files[i][1]) {
            load_ok(files[i][0], &g);
            assert_int_equal(g.n_trials, 1);
            ls_grid_free(&g);
            continue;
        }
        const char *msg = load_error(files[i][0]);
        if (strcmp(msg, files[i][1])) fail_msg("file %zu:\n  got  %s\n  want %s", i, msg, files[i][1]);
    }

    /* a cross-key problem that only a stand-in winner shows: base stride 200 is fine at ctx 512,
     * but the later stage's trials keep train.ctx 128 from any lr_rank winner */
    const char *later = "name: a\nbase: {model: {path: m}, data: {path: d}, train: {stride: 200}}\n"
                        "stages:\n  - name: s\n    grid: {train.ctx: [256, 128]}\n"
                        "  - name: t\n    select: {from: s, keep: [train.ctx]}\n    grid: {train.lr: [0.1]}\n";
    const char *msg = load_error(later);
    assert_string_equal(msg, "g.yaml:4: stage s (train.ctx=128): train.stride: 200 is more than train.ctx (128): "
                             "tokens would be skipped");
}

/* Too many trials are refused while the axes are read, before anything is built: quickly. */
static void test_huge_products(void **state) {
    (void)state;
    char yaml[8192];
    size_t o = (size_t)snprintf(yaml, sizeof yaml, "name: huge\nbase: {model: {path: m}, data: {path: d}}\ngrid:\n");
    const char *keys[] = {"train.seed", "lora.seed", "eval.seed", "split.seed", "train.lr"};
    for (int k = 0; k < 5; k++) {
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "  %s: [", keys[k]);
        for (int v = 0; v < 10; v++) o += (size_t)snprintf(yaml + o, sizeof yaml - o, "%s%d", v ? ", " : "", v + 1);
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "]\n");
    }
    clock_t t0 = clock();
    assert_string_equal(load_error(yaml), "g.yaml:3: grid: the axes make more than 10000 trials");
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
    /* 10000 exactly is allowed (4 axes of 10) */
    char *cut = strstr(yaml, "  train.lr:");
    *cut = '\0';
    ls_grid g;
    load_ok(yaml, &g);
    assert_int_equal(g.n_trials, 10000);
    ls_grid_free(&g);
    /* over the cap across stages */
    const char *stages = "name: s\nbase: {model: {path: m}, data: {path: d}}\nstages:\n"
                         "  - name: a\n    grid: {train.seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], lora.seed: [1, 2, 3, 4, 5, 6, "
                         "7, 8, 9, 10], eval.seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], split.seed: [1, 2, 3, 4, 5, 6, 7, 8, 9]}\n"
                         "  - name: b\n    grid: {train.seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], lora.seed: [1, 2, 3, 4, 5, "
                         "6, 7, 8, 9, 10], eval.seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], split.seed: [1, 2]}\n";
    assert_string_equal(load_error(stages), "g.yaml:7: grid: the axes make more than 10000 trials with the earlier stages");
    /* one axis of 10001 values */
    size_t cap = 200000;
    char *big = malloc(cap);
    o = (size_t)snprintf(big, cap, "name: b\ngrid:\n  train.seed: [");
    for (int v = 0; v <= 10000; v++) o += (size_t)snprintf(big + o, cap - o, "%s%d", v ? "," : "", v);
    snprintf(big + o, cap - o, "]\n");
    assert_string_equal(load_error(big), "g.yaml:3: train.seed: more than 10000 values");
    free(big);
    /* a file over the size cap */
    size_t n = LS_CONFIG_MAX_BYTES + 1;
    char *huge = malloc(n);
    memset(huge, '#', n);
    ls_grid h;
    assert_int_equal(ls_grid_load_string(huge, n, "g.yaml", NULL, &h), LS_ERR);
    assert_string_equal(ls_last_error(), "g.yaml: too large (1048577 bytes, a grid file has at most 1048576)");
    free(huge);
}

static void test_check_model(void **state) {
    (void)state;
    ls_grid g;
    load_ok(course_yaml, &g);
    assert_int_equal(ls_grid_check_model(&g, 32768), LS_OK);
    assert_int_equal(ls_grid_check_model(&g, 768), LS_OK);
    assert_int_equal(ls_grid_check_model(&g, 600), LS_ERR);
    assert_string_equal(ls_last_error(), "g.yaml:18: train.ctx: 768 is more than the model's max_position_embeddings (600)");
    assert_int_equal(ls_grid_check_model(&g, 256), LS_ERR);
    assert_string_equal(ls_last_error(), "g.yaml: train.ctx: 512 (base, which stage lr_rank uses) is more than "
                                         "the model's max_position_embeddings (256)");
    ls_grid_free(&g);
    /* base's train.ctx (the default 512) is not the trials' when every stage sets or keeps its own */
    static const char own_ctx[] = "name: c\n"
                                  "base: {model.path: m, data.path: d.h5, eval.systems: 0}\n"
                                  "stages:\n"
                                  "  - name: a\n"
                                  "    grid: {train.ctx: [64, 128]}\n"
                                  "  - name: b\n"
                                  "    select: {from: a, keep: [train.ctx]}\n"
                                  "    grid: {train.lr: [1e-3]}\n";
    load_ok(own_ctx, &g);
    assert_int_equal(ls_grid_check_model(&g, 256), LS_OK);
    assert_int_equal(ls_grid_check_model(&g, 100), LS_ERR);
    assert_string_equal(ls_last_error(), "g.yaml:5: train.ctx: 128 is more than the model's max_position_embeddings (100)");
    ls_grid_free(&g);
}

static void test_files(void **state) {
    (void)state;
    char path[4096];
    ls_grid g;
    snprintf(path, sizeof path, "%s/sweep/coursework.yaml", LS_SOURCE_DIR);
    if (ls_grid_load_file(path, &g) != LS_OK) fail_msg("%s", ls_last_error());
    assert_string_equal(g.name, "coursework");
    assert_true(g.budget_flops == 1e17);
    assert_int_equal(g.n_stages, 4);
    assert_string_equal(g.stages[0].name, "baseline");
    assert_int_equal(g.stages[0].n_trials, 1);
    assert_int_equal(g.stages[1].n_trials, 9);
    assert_int_equal(g.stages[2].n_trials, 3);
    assert_int_equal(g.stages[3].n_trials, 1);
    assert_int_equal(g.base.train.ctx, 512);
    char want[4200];
    snprintf(want, sizeof want, "%s/sweep/../models/Qwen2.5-0.5B-Instruct", LS_SOURCE_DIR);
    assert_string_equal(g.base.resolved.model_path, want);
    ls_grid_free(&g);
    snprintf(path, sizeof path, "%s/sweep/demo.yaml", LS_SOURCE_DIR);
    if (ls_grid_load_file(path, &g) != LS_OK) fail_msg("%s", ls_last_error());
    assert_string_equal(g.name, "demo");
    assert_int_equal(g.n_stages, 4);
    assert_true(g.n_trials <= 12);
    ls_grid_free(&g);
    snprintf(path, sizeof path, "%s/sweep/demo-asha.yaml", LS_SOURCE_DIR);
    if (ls_grid_load_file(path, &g) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(g.stages[0].early_stopping.type, LS_GRID_ES_ASHA);
    assert_int_equal(g.stages[0].n_configs, 9);
    assert_int_equal(g.stages[1].select_from, 0);
    ls_grid_free(&g);
    snprintf(path, sizeof path, "%s/sweep/coursework-asha.yaml", LS_SOURCE_DIR);
    if (ls_grid_load_file(path, &g) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(g.stages[1].method, LS_GRID_METHOD_SOBOL);
    assert_int_equal(g.stages[1].early_stopping.type, LS_GRID_ES_ASHA);
    assert_int_equal(g.stages[1].repeats, 3);
    assert_int_equal(g.stages[1].n_trials, 27);
    ls_grid_free(&g);
    snprintf(path, sizeof path, "%s/sweep/coursework-random.yaml", LS_SOURCE_DIR);
    if (ls_grid_load_file(path, &g) != LS_OK) fail_msg("%s", ls_last_error());
    assert_int_equal(g.n_stages, 4);
    assert_int_equal(g.stages[1].method, LS_GRID_METHOD_RANDOM);
    assert_int_equal(g.stages[1].repeats, 3);
    assert_int_equal(g.stages[1].n_trials, 24);
    assert_int_equal(g.stages[1].params[0].dist, LS_GRID_DIST_LOG_UNIFORM);
    assert_int_equal(g.stages[2].repeats, 3);
    assert_int_equal(g.n_trials, 32);
    ls_grid_free(&g);
    assert_int_equal(ls_grid_load_file("/nonexistent/g.yaml", &g), LS_ERR);
    assert_string_equal(ls_last_error(), "/nonexistent/g.yaml: cannot open: No such file or directory");

    /* relative paths resolve against the grid file's directory */
    snprintf(path, sizeof path, "%s/grid.yaml", temp_dir());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(small_yaml, f);
    fclose(f);
    if (ls_grid_load_file(path, &g) != LS_OK) fail_msg("%s", ls_last_error());
    snprintf(want, sizeof want, "%s/m", temp_dir());
    assert_string_equal(g.base.resolved.model_path, want);
    ls_grid_free(&g);
}

/* ---- sampled search spaces and repeats ------------------------------------------------------ */

/* A random stage (the example) and a Sobol stage with repeats that starts from its winner. */
static const char sampled_yaml[] =
    "name: sampled\n"                                                          /* 1 */
    "base: {model: {path: m}, data: {path: d.h5}, train: {max_steps: 100}}\n"  /* 2 */
    "stages:\n"                                                                /* 3 */
    "  - name: lr_rank\n"                                                      /* 4 */
    "    method: random\n"                                                     /* 5 */
    "    trials: 27\n"                                                         /* 6 */
    "    parameters:\n"                                                        /* 7 */
    "      train.lr: {distribution: log_uniform, min: 1e-5, max: 1e-3}\n"      /* 8 */
    "      lora.rank: {values: [2, 4, 8, 16]}\n"                               /* 9 */
    "      train.warmup_steps: {distribution: int_uniform, min: 0, max: 50}\n" /* 10 */
    "      lora.alpha: {distribution: uniform, min: 4, max: 32}\n"             /* 11 */
    "  - name: ctx\n"                                                          /* 12 */
    "    select: {from: lr_rank, keep: [train.lr, lora.rank]}\n"               /* 13 */
    "    method: sobol\n"                                                      /* 14 */
    "    trials: 4\n"                                                          /* 15 */
    "    repeats: 3\n"                                                         /* 16 */
    "    parameters:\n"                                                        /* 17 */
    "      train.ctx: {distribution: int_uniform, min: 64, max: 512}\n";       /* 18 */

/* The same space written otherwise: flow style, keys of each parameter in another order. */
static const char sampled_flow[] =
    "name: renamed\n"
    "base: {train.max_steps: 1e2, data.path: d.h5, model.path: m}\n"
    "stages: [{name: lr_rank, trials: 27, parameters: {\n"
    "           train.lr: {max: 0.001, min: 0.00001, distribution: log_uniform},\n"
    "           lora.rank: {values: [2, 4, 8, 16]},\n"
    "           train.warmup_steps: {max: 50, min: 0, distribution: int_uniform},\n"
    "           lora.alpha: {min: 4.0, max: 32, distribution: uniform}}, method: random},\n"
    "         {name: ctx, select: {from: lr_rank, keep: [train.lr, lora.rank]}, method: sobol, repeats: 3,\n"
    "          trials: 4, parameters: {train.ctx: {distribution: int_uniform, min: 64, max: 512}}}]\n";

/* text with `from` replaced by `to` (once) */
static char *replaced(const char *text, const char *from, const char *to) {
    const char *at = strstr(text, from);
    if (!at) fail_msg("'%s' not in the text", from);
    size_t cap = strlen(text) + strlen(to) + 1;
    char *out = malloc(cap);
    snprintf(out, cap, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

static void expand_ok(const ls_grid *g, size_t stage, const ls_trial_config *winner, ls_grid_trial **t, size_t *n) {
    if (ls_grid_expand(g, stage, winner, t, n) != LS_OK) fail_msg("%s", ls_last_error());
}

static void test_sampled(void **state) {
    (void)state;
    ls_grid g;
    load_ok(sampled_yaml, &g);
    assert_int_equal(g.n_stages, 2);
    const ls_grid_stage *s = &g.stages[0];
    assert_int_equal(s->method, LS_GRID_METHOD_RANDOM);
    assert_int_equal(s->n_params, 4);
    assert_int_equal(s->n_configs, 27);
    assert_int_equal(s->repeats, 1);
    assert_int_equal(s->n_trials, 27);
    assert_int_equal(s->params[0].dist, LS_GRID_DIST_LOG_UNIFORM);
    assert_int_equal(s->params[0].line, 8);
    assert_true(s->params[0].min == 1e-5 && s->params[0].max == 1e-3);
    assert_int_equal(s->params[1].dist, LS_GRID_DIST_VALUES);
    assert_int_equal(g.stages[1].method, LS_GRID_METHOD_SOBOL);
    assert_int_equal(g.stages[1].n_trials, 12);
    assert_int_equal(g.n_trials, 39);

    /* sampling bounds: every value in its range, integer keys whole, values from the list */
    ls_grid_trial *t;
    size_t n;
    expand_ok(&g, 0, NULL, &t, &n);
    assert_int_equal(n, 27);
    int ranks_seen[17] = {0};
    for (size_t i = 0; i < n; i++) {
        const ls_trial_config *c = &t[i].config;
        assert_int_equal(t[i].configuration, i);
        assert_int_equal(t[i].repeat, 0);
        assert_true(t[i].config_id == t[i].id);
        assert_true(c->train.lr >= 1e-5 && c->train.lr <= 1e-3);
        assert_true(c->lora.rank == 2 || c->lora.rank == 4 || c->lora.rank == 8 || c->lora.rank == 16);
        ranks_seen[c->lora.rank] = 1;
        assert_true(c->train.warmup_steps >= 0 && c->train.warmup_steps <= 50);
        assert_true(c->lora.alpha >= 4 && c->lora.alpha <= 32);
        /* 4 significant digits */
        char buf[64];
        snprintf(buf, sizeof buf, "%.3e", c->train.lr);
        assert_true(strtod(buf, NULL) == c->train.lr);
        for (size_t j = 0; j < i; j++) assert_true(t[i].id != t[j].id); /* distinct configurations */
    }
    assert_true(ranks_seen[2] && ranks_seen[4] && ranks_seen[8] && ranks_seen[16]);
    /* the id is the equivalent trial file's */
    char yaml[512];
    snprintf(yaml, sizeof yaml, "model: {path: m}\ndata: {path: d.h5}\ntrain: {max_steps: 100, lr: %.17g, "
             "warmup_steps: %d}\nlora: {rank: %d, alpha: %.17g}\n", t[5].config.train.lr, t[5].config.train.warmup_steps,
             t[5].config.lora.rank, t[5].config.lora.alpha);
    ls_trial_config file;
    if (ls_config_load_string(yaml, strlen(yaml), "t.yaml", &file) != LS_OK) fail_msg("%s", ls_last_error());
    assert_true(ls_config_hash(&file) == t[5].id);
    ls_config_free(&file);
    /* the first configuration, pinned: a change of the sampler changes every sampled sweep's ids */
    assert_string_equal(t[0].overrides, "train.lr=3.883e-05 lora.rank=16 train.warmup_steps=27 lora.alpha=7.163");

    /* the same configurations twice, and from the same space written otherwise */
    const char *same[2] = {sampled_yaml, sampled_flow};
    for (int k = 0; k < 2; k++) {
        ls_grid h;
        load_ok(same[k], &h);
        ls_grid_trial *u;
        size_t m;
        expand_ok(&h, 0, NULL, &u, &m);
        assert_int_equal(m, n);
        for (size_t i = 0; i < n; i++) {
            assert_true(u[i].id == t[i].id);
            assert_string_equal(u[i].overrides, t[i].overrides);
        }
        assert_true(h.hash == g.hash); /* the grid's identity: not the name or the spelling */
        ls_grid_trials_free(u, m);
        ls_grid_free(&h);
    }
    /* more trials keep the first 27; another seed or another range draws other ones */
    static const char *const other[][2] = {{"trials: 27", "trials: 40"},
                                           {"    trials: 27\n", "    trials: 27\n    seed: 1\n"},
                                           {"max: 1e-3", "max: 1e-2"}};
    for (int k = 0; k < 3; k++) {
        char *text = replaced(sampled_yaml, other[k][0], other[k][1]);
        ls_grid h;
        load_ok(text, &h);
        ls_grid_trial *u;
        size_t m, same_ids = 0;
        expand_ok(&h, 0, NULL, &u, &m);
        for (size_t i = 0; i < n; i++) same_ids += u[i].id == t[i].id;
        assert_true(h.hash != g.hash);
        if (k == 0) {
            assert_int_equal(m, 40);
            assert_int_equal(same_ids, 27);
            assert_int_equal(ls_grid_extends(&g, &h), LS_OK); /* a sampled stage may draw more */
            assert_int_equal(ls_grid_extends(&h, &g), LS_ERR);
            assert_string_equal(ls_last_error(), "stage lr_rank: trials went down from 40 to 27");
        } else {
            assert_true(same_ids < 3);
            assert_int_equal(ls_grid_extends(&g, &h), LS_ERR);
            assert_string_equal(ls_last_error(), "stage lr_rank: its search space changed (a sampled stage may only "
                                                 "raise trials or repeats)");
        }
        ls_grid_trials_free(u, m);
        ls_grid_free(&h);
        free(text);
    }

    /* the Sobol stage with repeats, on the winner of the first: configuration-major, 3 repeats each */
    ls_grid_trial *c;
    size_t nc;
    expand_ok(&g, 1, &t[3].config, &c, &nc);
    assert_int_equal(nc, 12);
    static const int ctxs[] = {64, 288, 400, 176}; /* 64 + floor(u * 449) at the points 0, 1/2, 3/4, 1/4 */
    for (size_t i = 0; i < nc; i++) {
        assert_int_equal(c[i].index, i);
        assert_int_equal(c[i].configuration, i / 3);
        assert_int_equal(c[i].repeat, i % 3);
        assert_int_equal(c[i].config.train.ctx, ctxs[i / 3]);
        assert_true(c[i].config.train.lr == t[3].config.train.lr);
        assert_true(c[i].config_id == c[i - i % 3].id);
    }
    ls_grid_trials_free(c, nc);
    ls_grid_trials_free(t, n);
    ls_grid_free(&g);

    /* the single-stage form at the top level */
    load_ok("name: top\nbase: {model.path: m, data.path: d.h5}\nmethod: random\ntrials: 5\nrepeats: 2\n"
            "parameters: {train.lr: {distribution: log_uniform, min: 1e-5, max: 1e-3}}\n", &g);
    assert_int_equal(g.n_stages, 1);
    assert_string_equal(g.stages[0].name, "main");
    assert_int_equal(g.stages[0].line, 3);
    assert_int_equal(g.n_trials, 10);
    ls_grid_free(&g);
}

/* One-sample Kolmogorov-Smirnov statistic of x[0..n) (sorted here) against uniform on [0, 1]. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double ks_uniform(double *x, size_t n) {
    qsort(x, n, sizeof *x, cmp_double);
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double lo = x[i] - (double)i / (double)n, hi = (double)(i + 1) / (double)n - x[i];
        if (lo > d) d = lo;
        if (hi > d) d = hi;
    }
    return d;
}

/* log10 of 1000 log_uniform draws in [1e-5, 1e-3] is uniform on [-5, -3]: the KS statistic is
 * below the 1% critical value 1.628 / sqrt(1000); uniform draws over the same range are not. */
static void test_log_uniform_ks(void **state) {
    (void)state;
    const char *dists[2] = {"log_uniform", "uniform"};
    double d[2];
    for (int k = 0; k < 2; k++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "name: ks\nbase: {model.path: m, data.path: d.h5}\nmethod: random\ntrials: 1000\n"
                 "parameters: {train.lr: {distribution: %s, min: 1e-5, max: 1e-3}}\n", dists[k]);
        ls_grid g;
        load_ok(yaml, &g);
        ls_grid_trial *t;
        size_t n;
        expand_ok(&g, 0, NULL, &t, &n);
        assert_int_equal(n, 1000);
        double *x = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++) {
            assert_true(t[i].config.train.lr >= 1e-5 && t[i].config.train.lr <= 1e-3);
            x[i] = (log10(t[i].config.train.lr) + 5) / 2;
        }
        d[k] = ks_uniform(x, n);
        free(x);
        ls_grid_trials_free(t, n);
        ls_grid_free(&g);
    }
    print_message("KS statistic of log10(lr): log_uniform %.4f, uniform %.4f (1%% critical value %.4f)\n", d[0], d[1],
                  1.628 / sqrt(1000));
    assert_true(d[0] < 1.628 / sqrt(1000));
    assert_true(d[1] > 0.3); /* the test can tell: linear draws pile up in the top decade */
}

/* Sobol points by index: the first 8 of dimensions 1 and 2 are the published ones (Joe and Kuo's
 * tables, the same in every implementation: dimension 1 is van der Corput's sequence), point 0
 * the origin; and in every dimension the first 16 points put exactly one in each sixteenth of
 * [0, 1) (each one-dimensional projection is a (0, 1)-sequence in base 2). */
static void test_sobol(void **state) {
    (void)state;
    static const char yaml[] =
        "name: sobol\nbase: {model.path: m, data.path: d.h5}\nmethod: sobol\ntrials: 16\n"
        "parameters:\n"
        "  train.min_lr_ratio: {distribution: uniform, min: 0, max: 1}\n"
        "  train.weight_decay: {distribution: uniform, min: 0, max: 1}\n"
        "  train.grad_clip: {distribution: uniform, min: 0, max: 1}\n"
        "  lora.alpha: {distribution: uniform, min: 0, max: 1}\n";
    static const double x1[8] = {0, 0.5, 0.75, 0.25, 0.375, 0.875, 0.625, 0.125};
    static const double x2[8] = {0, 0.5, 0.25, 0.75, 0.375, 0.875, 0.125, 0.625};
    ls_grid g;
    load_ok(yaml, &g);
    ls_grid_trial *t;
    size_t n;
    expand_ok(&g, 0, NULL, &t, &n);
    assert_int_equal(n, 16);
    for (size_t i = 0; i < 8; i++) {
        assert_true(t[i].config.train.min_lr_ratio == x1[i]);
        assert_true(t[i].config.train.weight_decay == x2[i]);
    }
    for (int dim = 0; dim < 4; dim++) {
        int cell[16] = {0};
        for (size_t i = 0; i < 16; i++) {
            const ls_trial_config *c = &t[i].config;
            double v = dim == 0 ? c->train.min_lr_ratio : dim == 1 ? c->train.weight_decay : dim == 2 ? c->train.grad_clip
                                                                                                    : c->lora.alpha;
            cell[(int)(v * 16)]++;
        }
        for (int k = 0; k < 16; k++) assert_int_equal(cell[k], 1);
    }
    ls_grid_trials_free(t, n);
    ls_grid_free(&g);
}

static const char repeats_yaml[] =
    "name: rep\n"
    "base: {model.path: m, data.path: d.h5, train.seed: 7, lora.seed: 11}\n"
    "grid:\n"
    "  train.lr: [1e-4, 2e-4, 3e-4, 4e-4]\n"
    "repeats: 3\n";

/* Repeats: configuration-major; repeat 0 is the configuration itself (the id without repeats);
 * the others' seeds distinct, pinned, and found again from a trial's config. */
static void test_repeats(void **state) {
    (void)state;
    /* the derivation, pinned: a change changes every repeated trial's id */
    uint64_t ts[4], lo[4];
    ls_grid_repeat_seeds(0x0123456789abcdefull, 7, 11, 4, ts, lo);
    static const uint64_t want_t[4] = {7, 7862774501138060ull, 4767249842358755ull, 255683281083171ull};
    static const uint64_t want_l[4] = {11, 6275902069768755ull, 5929257289665084ull, 4902363677035778ull};
    for (int r = 0; r < 4; r++) {
        assert_true(ts[r] == want_t[r]);
        assert_true(lo[r] == want_l[r]);
        assert_true(ts[r] <= (uint64_t)LS_CONFIG_SEED_MAX && lo[r] <= (uint64_t)LS_CONFIG_SEED_MAX);
    }
    uint64_t ts2[2], lo2[2]; /* fewer repeats: the same first ones */
    ls_grid_repeat_seeds(0x0123456789abcdefull, 7, 11, 2, ts2, lo2);
    assert_true(ts2[1] == ts[1] && lo2[1] == lo[1]);

    ls_grid g, plain;
    load_ok(repeats_yaml, &g);
    assert_int_equal(g.n_trials, 12);
    assert_int_equal(g.stages[0].repeats, 3);
    assert_int_equal(g.stages[0].n_configs, 4);
    char *no_repeats = replaced(repeats_yaml, "repeats: 3\n", "");
    load_ok(no_repeats, &plain);
    assert_true(plain.hash != g.hash);
    ls_grid_trial *t, *p;
    size_t n, np;
    expand_ok(&g, 0, NULL, &t, &n);
    expand_ok(&plain, 0, NULL, &p, &np);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++) {
        size_t c = i / 3, r = i % 3;
        assert_int_equal(t[i].configuration, c);
        assert_int_equal(t[i].repeat, r);
        assert_true(t[i].config_id == p[c].id);
        assert_true(t[i].config.train.lr == p[c].config.train.lr);
        if (r == 0) {
            assert_true(t[i].id == p[c].id);
            assert_string_equal(t[i].overrides, p[c].overrides);
            assert_true(t[i].config.train.seed == 7 && t[i].config.lora.seed == 11);
        } else {
            char want[160];
            snprintf(want, sizeof want, "%s train.seed=%" PRIu64 " lora.seed=%" PRIu64, p[c].overrides,
                     t[i].config.train.seed, t[i].config.lora.seed);
            assert_string_equal(t[i].overrides, want);
        }
        for (size_t j = i - r; j < i; j++) { /* distinct within the configuration */
            assert_true(t[i].config.train.seed != t[j].config.train.seed);
            assert_true(t[i].config.lora.seed != t[j].config.lora.seed);
        }
        for (size_t j = 0; j < i; j++) assert_true(t[i].id != t[j].id);
        uint64_t cid;
        size_t rep;
        assert_int_equal(ls_grid_configuration_of(&g, 0, &t[i].config, &cid, &rep), LS_OK);
        assert_true(cid == p[c].id);
        assert_int_equal(rep, r);
    }
    uint64_t ts3[3], lo3[3];
    ls_grid_repeat_seeds(p[2].id, 7, 11, 3, ts3, lo3);
    assert_true(t[8].config.train.seed == ts3[2] && t[8].config.lora.seed == lo3[2]);
    /* a config with seeds of no repeat is no trial of the stage */
    ls_trial_config odd;
    ls_config_copy(&odd, &t[4].config);
    odd.train.seed = 12345;
    uint64_t cid;
    size_t rep;
    assert_int_equal(ls_grid_configuration_of(&g, 0, &odd, &cid, &rep), LS_ERR);
    assert_string_equal(ls_last_error(), "stage main: the trial has the seeds of none of the stage's 3 repeats");
    assert_int_equal(ls_grid_configuration_of(&plain, 0, &odd, &cid, &rep), LS_OK); /* no repeats: itself */
    assert_true(cid == ls_config_hash(&odd) && rep == 0);
    ls_config_free(&odd);
    /* stable across loads; more repeats keep the first ones (the grid grows), fewer are refused */
    char *more = replaced(repeats_yaml, "repeats: 3", "repeats: 4");
    ls_grid m;
    load_ok(more, &m);
    ls_grid_trial *u;
    size_t nu;
    expand_ok(&m, 0, NULL, &u, &nu);
    assert_int_equal(nu, 16);
    for (size_t i = 0; i < n; i++) assert_true(u[(i / 3) * 4 + i % 3].id == t[i].id);
    assert_int_equal(ls_grid_extends(&g, &m), LS_OK);
    assert_int_equal(ls_grid_extends(&plain, &g), LS_OK);
    assert_int_equal(ls_grid_extends(&m, &g), LS_ERR);
    assert_string_equal(ls_last_error(), "stage main: repeats went down from 4 to 3");
    ls_grid_trials_free(u, nu);
    ls_grid_free(&m);
    free(more);
    ls_grid_trials_free(p, np);
    ls_grid_free(&plain);
    free(no_repeats);

    /* a later stage shares trials with an earlier one when its configuration is the same */
    load_ok("name: r2\nbase: {model.path: m, data.path: d.h5}\nstages:\n"
            "  - {name: a, repeats: 2, grid: {train.lr: [1e-4, 2e-4]}}\n"
            "  - {name: b, repeats: 2, select: {from: a, keep: [train.lr]}, grid: {train.ctx: [256, 512]}}\n", &m);
    ls_grid_trial *b;
    size_t nb;
    expand_ok(&m, 0, NULL, &u, &nu);
    expand_ok(&m, 1, &u[2].config, &b, &nb); /* configuration 1 (lr 2e-4) won: base's ctx is 512 */
    assert_true(b[2].id == u[2].id && b[3].id == u[3].id);
    ls_grid_trials_free(b, nb);
    ls_grid_trials_free(u, nu);
    ls_grid_free(&m);
    ls_grid_trials_free(t, n);
    ls_grid_free(&g);
}

/* Selection by the mean over a configuration's repeats, against a table worked by hand:
 *
 *   config  repeat 0  repeat 1  repeat 2   mean     competes
 *   0       1.0       1.1       0.4        0.8333   yes (holds the best single trial)
 *   1       0.7       0.8       0.75       0.75     yes  <- winner
 *   2       0.5       NaN       0.6        -        no: a repeat has no value (its finite mean 0.55 would win)
 *   3       0.75      0.75      0.75       0.75     yes, ties with 1: the lower configuration wins
 */
static void test_select_repeats(void **state) {
    (void)state;
    ls_grid g;
    load_ok(repeats_yaml, &g);
    ls_grid_trial *t;
    size_t n, w = 99;
    expand_ok(&g, 0, NULL, &t, &n);
    static const double table[12] = {1.0, 1.1, 0.4, 0.7, 0.8, 0.75, 0.5, NAN, 0.6, 0.75, 0.75, 0.75};
    ls_grid_result r[12];
    for (int i = 0; i < 12; i++) {
        r[i].id = t[11 - i].id; /* results in any order */
        r[i].metric[LS_GRID_METRIC_FINAL_VAL_LOSS] = table[11 - i];
        r[i].metric[LS_GRID_METRIC_MSE] = r[i].metric[LS_GRID_METRIC_MAE] = NAN;
    }
    assert_int_equal(ls_grid_select(t, n, r, 12, LS_GRID_METRIC_FINAL_VAL_LOSS, &w), LS_OK);
    assert_int_equal(w, 3); /* configuration 1's repeat 0 */
    /* configuration 1 without a result for one repeat (failed, not run): configuration 3 wins */
    assert_int_equal(ls_grid_select(t, n, r + 1, 11, LS_GRID_METRIC_FINAL_VAL_LOSS, &w), LS_OK); /* t[10] missing */
    assert_int_equal(w, 3);
    r[7].metric[LS_GRID_METRIC_FINAL_VAL_LOSS] = NAN; /* t[4]: configuration 1, repeat 1 */
    assert_int_equal(ls_grid_select(t, n, r, 12, LS_GRID_METRIC_FINAL_VAL_LOSS, &w), LS_OK);
    assert_int_equal(w, 9);
    assert_int_equal(ls_grid_select(t, n, r, 12, LS_GRID_METRIC_MSE, &w), LS_ERR);
    assert_string_equal(ls_last_error(), "stage main: no configuration has a mse in every repeat");
    ls_grid_trials_free(t, n);
    ls_grid_free(&g);
}

/* A configuration's repeats are admitted or skipped together. */
static void test_budget_groups(void **state) {
    (void)state;
    /* three configurations of three repeats: 2 x 3 = 6, 3 x 3 = 9, 1 x 3 = 3 */
    const double est[9] = {2, 2, 2, 3, 3, 3, 1, 1, 1};
    const size_t group[9] = {0, 0, 0, 1, 1, 1, 2, 2, 2};
    ls_grid_budget_entry e[9];
    double left = 13;
    ls_grid_budget_plan_groups(est, group, 9, &left, e);
    /* 9 first (left 4), then 6 > 4: skipped whole, then 3 (left 1) */
    const size_t order[9] = {3, 4, 5, 0, 1, 2, 6, 7, 8};
    const int skipped[9] = {0, 0, 0, 1, 1, 1, 0, 0, 0};
    for (int i = 0; i < 9; i++) {
        assert_int_equal(e[i].trial, order[i]);
        assert_int_equal(e[i].skipped, skipped[i]);
        assert_true(e[i].flops == est[order[i]]);
    }
    assert_true(left == 1);
    assert_string_equal(e[3].reason, "estimated 6 FLOPS for 3 repeats, 4 left of the budget");
    /* one repeat without an estimate: its configuration has none */
    const double bad[4] = {1, NAN, 1, 1};
    const size_t pairs[4] = {0, 0, 1, 1};
    left = INFINITY;
    ls_grid_budget_plan_groups(bad, pairs, 4, &left, e);
    assert_int_equal(e[0].trial, 2);
    assert_int_equal(e[2].trial, 0);
    assert_int_equal(e[2].skipped, 1);
    assert_int_equal(e[3].skipped, 1);
    assert_string_equal(e[3].reason, "no FLOPS estimate");
}

/* Bad sampled stages and repeats: one line each, FILE:LINE: KEY: problem. */
static void test_sampled_errors(void **state) {
    (void)state;
    static const char head[] = "name: e\nbase: {model: {path: m}, data: {path: d.h5}}\nstages:\n  - name: s\n";
    static const char rnd[] = "    method: random\n    trials: 2\n    parameters:\n"; /* lines 5-7 */
    static const char *const cases[][3] = {
        /* {stage text from line 5, parameter line 8 (after rnd when not NULL), message} */
        {"    method: random\n    trials: 0\n    parameters: {train.lr: {values: [1e-4]}}\n", NULL,
         "g.yaml:6: trials: 0 is out of range [1, 10000]"},
        {"    method: random\n    trials: 2.5\n", NULL, "g.yaml:6: trials: 2.5 is not a whole number"},
        {"    method: random\n    trials: many\n", NULL, "g.yaml:6: trials: 'many' is not a number"},
        {"    method: random\n    trials: 10001\n", NULL, "g.yaml:6: trials: 10001 is out of range [1, 10000]"},
        {"    repeats: 0\n    grid: {train.lr: [1e-4]}\n", NULL, "g.yaml:5: repeats: 0 is out of range [1, 10000]"},
        {"    repeats: [3]\n", NULL, "g.yaml:5: repeats: expected a number, got a list"},
        {"    method: bayes\n", NULL, "g.yaml:5: method: 'bayes' is not one of grid, random, sobol"},
        {"    method: random\n    trials: 2\n    seed: -1\n    parameters: {lora.rank: {values: [2, 4]}}\n", NULL,
         "g.yaml:7: seed: -1 is out of range [0, 9007199254740991]"},
        {rnd, "      train.lr: {distribution: normal, min: 1, max: 2}\n",
         "g.yaml:8: train.lr: distribution 'normal' is not one of uniform, log_uniform, int_uniform (or give values: [...])"},
        {rnd, "      train.lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-3}\n",
         "g.yaml:8: train.lr: distribution 'log_uniform_values' is not one of uniform, log_uniform, int_uniform "
         "(log_uniform here takes min and max as values)"},
        {rnd, "      train.lr: {distribution: uniform, min: 1e-3, max: 1e-4}\n",
         "g.yaml:8: train.lr: min 1e-3 is not less than max 1e-4"},
        {rnd, "      train.lr: {distribution: uniform, min: 1e-3, max: 0.001}\n",
         "g.yaml:8: train.lr: min 1e-3 is not less than max 0.001"},
        {rnd, "      train.lr: {distribution: log_uniform, min: 0, max: 1e-3}\n",
         "g.yaml:8: train.lr: log_uniform needs 0 < min < max, and min is 0 (min and max are the values themselves, "
         "not exponents)"},
        {rnd, "      train.lr: {distribution: log_uniform, min: -5, max: -3}\n",
         "g.yaml:8: train.lr: log_uniform needs 0 < min < max, and min is -5 (min and max are the values themselves, "
         "not exponents)"},
        {rnd, "      lora.rank: {distribution: int_uniform, min: 0, max: 8}\n",
         "g.yaml:8: lora.rank: min 0 is out of range [1, 1024]"},
        {rnd, "      train.lr: {distribution: uniform, min: 1, max: 20}\n", "g.yaml:8: train.lr: max 20 is out of range (0, 10]"},
        {rnd, "      lora.rank: {values: [2, 0]}\n", "g.yaml:8: lora.rank: 0 is out of range [1, 1024]"},
        {rnd, "      lora.rank: {values: [2, 2.0]}\n", "g.yaml:8: lora.rank: 2 is listed twice"},
        {rnd, "      lora.rank: {values: []}\n", "g.yaml:8: lora.rank: values: the list is empty"},
        {rnd, "      train.lr: {distribution: uniform, mean: 1}\n",
         "g.yaml:8: train.lr: unknown setting 'mean' (expected values, or distribution, min and max)"},
        {rnd, "      train.lr: {distribution: uniform, min: 1e-5, min: 1e-4}\n",
         "g.yaml:8: train.lr: min is given twice (first on line 8)"},
        {rnd, "      train.lr: {values: [1e-4], distribution: uniform, min: 1e-5, max: 1e-3}\n",
         "g.yaml:8: train.lr: give either values or a distribution with min and max, not both"},
        {rnd, "      train.lr: {distribution: uniform, min: 1e-5}\n",
         "g.yaml:8: train.lr: distribution uniform needs min and max (max is missing)"},
        {rnd, "      train.lr: {min: 1e-5, max: 1e-3}\n",
         "g.yaml:8: train.lr: min and max need a distribution (uniform, log_uniform or int_uniform)"},
        {rnd, "      train.lr: {}\n", "g.yaml:8: train.lr: give values: [...] or a distribution with min and max"},
        {rnd, "      train.lr: 1e-4\n",
         "g.yaml:8: train.lr: expected a mapping (values: [...], or distribution with min and max), got '1e-4'"},
        {rnd, "      train.lr: {distribution: uniform, min: x, max: 1}\n", "g.yaml:8: train.lr: min: 'x' is not a number"},
        {rnd, "      train.lr: {distribution: uniform, min: \"1\", max: 2}\n",
         "g.yaml:8: train.lr: min: expected a number, got the string \"1\""},
        {rnd, "      train.schedule: {distribution: uniform, min: 0, max: 1}\n",
         "g.yaml:8: train.schedule: a distribution needs a key that takes a number: give values: [...]"},
        {rnd, "      lora.rank: {distribution: uniform, min: 1.5, max: 8}\n",
         "g.yaml:8: lora.rank: min 1.5 is not a whole number (the key is an integer)"},
        {rnd, "      lora.alpha: {distribution: int_uniform, min: 1, max: 8.5}\n",
         "g.yaml:8: lora.alpha: max 8.5 is not a whole number (int_uniform draws whole numbers)"},
        {rnd, "      train.lrr: {values: [1e-4]}\n", "g.yaml:8: train.lrr: unknown key (did you mean train.lr?)"},
        {rnd, "      train.lr: {values: [1e-4, 2e-4]}\n      train.lr: {values: [3e-4]}\n",
         "g.yaml:9: train.lr: duplicate parameter (first on line 8)"},
        {rnd, "      train.ranks_per_trial: {values: [1, 2]}\n",
         "g.yaml:8: train.ranks_per_trial: cannot be an axis: a sweep runs every trial on the same number of ranks; set "
         "it in base"},
        {"    method: random\n    trials: 5\n    parameters: {lora.rank: {values: [2, 4]}}\n", NULL,
         "g.yaml:6: trials: 5 is more than the 2 distinct configurations of the parameters"},
        {"    method: random\n    trials: 3\n    parameters: {train.lr: {distribution: uniform, min: 1e-4, max: 1.001e-4}}\n",
         NULL, "g.yaml:6: trials: 1300 draws gave only 2 distinct configurations, fewer than trials: 3 (the space is too "
               "small: widen it or lower trials)"},
        {"    method: random\n    trials: 2\n    parameters: {}\n", NULL,
         "g.yaml:7: parameters: name at least one key to sample"},
        {"    method: random\n    trials: 2\n    parameters: [train.lr]\n", NULL,
         "g.yaml:7: parameters: expected a mapping of keys (such as 'train.lr: {distribution: log_uniform, min: 1e-5, "
         "max: 1e-3}'), got a list"},
        /* how the keys go together */
        {"    method: random\n    trials: 2\n    grid: {train.lr: [1e-4]}\n    parameters: {lora.rank: {values: [2, 4]}}\n",
         NULL, "g.yaml:8: parameters: give either grid (axes) or parameters (a sampled search), not both (grid on line 7)"},
        {"    parameters: {lora.rank: {values: [2, 4]}}\n", NULL,
         "g.yaml:5: method: missing: parameters are sampled by method random or sobol"},
        {"    method: grid\n    parameters: {lora.rank: {values: [2]}}\n", NULL,
         "g.yaml:5: method: grid runs the product of grid axes; parameters are sampled by method random or sobol"},
        {"    method: sobol\n    trials: 2\n    grid: {train.lr: [1e-4]}\n", NULL,
         "g.yaml:7: grid: method sobol samples parameters, not grid axes (a key fixed for the stage is 'KEY: {values: "
         "[VALUE]}' in parameters)"},
        {"    method: random\n    trials: 2\n", NULL, "g.yaml:5: parameters: missing: the keys method random samples"},
        {"    method: random\n    parameters: {lora.rank: {values: [2, 4]}}\n", NULL,
         "g.yaml:5: trials: missing: how many configurations method random draws"},
        {"    trials: 3\n    grid: {train.lr: [1e-4]}\n", NULL,
         "g.yaml:5: trials: only for method random or sobol (a grid stage runs the product of its axes)"},
        {"    method: sobol\n    trials: 2\n    seed: 3\n    parameters: {lora.rank: {values: [2, 4]}}\n", NULL,
         "g.yaml:7: seed: only for method random (Sobol points are fixed by their index)"},
        {"    seed: 3\n", NULL, "g.yaml:5: seed: only for method random (a grid stage draws nothing)"},
        {"    method: random\n    method: sobol\n", NULL, "g.yaml:6: method: duplicate key (first on line 5)"},
        /* repeats set the seeds */
        {"    repeats: 2\n    grid: {train.seed: [1, 2]}\n", NULL,
         "g.yaml:6: train.seed: cannot be an axis of a stage with repeats (line 5): repeats set train.seed and lora.seed"},
        {"    repeats: 2\n    method: random\n    trials: 2\n    parameters: {lora.seed: {distribution: int_uniform, min: 0, "
         "max: 9}}\n", NULL,
         "g.yaml:8: lora.seed: cannot be a parameter of a stage with repeats (line 5): repeats set train.seed and "
         "lora.seed"},
        {"    repeats: 10000\n    grid: {train.lr: [1e-4, 2e-4]}\n", NULL,
         "g.yaml:5: repeats: 2 configurations x 10000 repeats make more than 10000 trials"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[4096];
        snprintf(buf, sizeof buf, "%s%s%s", head, cases[i][0], cases[i][1] ? cases[i][1] : "");
        const char *msg = load_error(buf);
        if (strcmp(msg, cases[i][2])) fail_msg("case %zu:\n  got  %s\n  want %s", i, msg, cases[i][2]);
    }
    /* across stages, and at the top level */
    static const char *const files[][2] = {
        {"name: a\nbase: {model.path: m, data.path: d}\nstages:\n  - {name: s, grid: {train.lr: [1e-4, 2e-4]}}\n"
         "  - name: t\n    select: {from: s, keep: [train.lr, train.seed]}\n    repeats: 2\n",
         "g.yaml:6: select.keep: train.seed cannot be kept in a stage with repeats (line 7): repeats set train.seed and "
         "lora.seed"},
        {"name: a\nbase: {model.path: m, data.path: d}\nstages:\n  - {name: s, grid: {train.lr: [1e-4, 2e-4]}}\n"
         "  - name: t\n    select: {from: s, keep: [train.lr]}\n    method: random\n    trials: 2\n"
         "    parameters: {train.lr: {values: [1e-4, 2e-4]}}\n",
         "g.yaml:6: select.keep: train.lr is also a parameter of stage t (line 9)"},
        {"name: a\nbase: {model.path: m, data.path: d}\nrepeats: 2\nstages: []\n",
         "g.yaml:4: stages: give either repeats or stages, not both (repeats on line 3)"},
        {"name: a\nbase: {model.path: m, data.path: d}\nstages: [{name: s}]\nparameters: {}\n",
         "g.yaml:4: parameters: give either parameters or stages, not both (stages on line 3)"},
        {"name: a\nbase: {model.path: m, data.path: d}\nselect: {from: s}\n",
         "g.yaml:3: select: unknown key (expected name, budget_flops, max_attempts, base, grid, stages; or method, "
         "trials, seed, parameters, repeats, early_stopping)"},
        {"name: a\nbase: {model.path: m, data.path: d}\nstages:\n"
         "  - {name: s, method: random, trials: 9000, parameters: {train.lr: {distribution: uniform, min: 1e-4, max: 1}}}\n"
         "  - {name: t, method: sobol, trials: 1001, parameters: {train.lr: {distribution: uniform, min: 1e-4, max: 1}}}\n",
         "g.yaml:5: trials: more than 10000 trials with the earlier stages"},
        /* a sampled value that fails a cross-key check names the stage and the configuration */
        {"name: a\nbase: {model.path: m, data.path: d, train.ctx: 64}\nmethod: random\ntrials: 2\n"
         "parameters: {train.stride: {values: [32, 100]}}\n",
         "g.yaml:3: stage main (train.stride=100): train.stride: 100 is more than train.ctx (64): tokens would be skipped"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *msg = load_error(files[i][0]);
        if (strcmp(msg, files[i][1])) fail_msg("file %zu:\n  got  %s\n  want %s", i, msg, files[i][1]);
    }
}

/* early_stopping: what loads (defaults, the canonical text, trial ids the same as without it), a
 * changed rule refused on a grown grid, and each bad input with its line. */
static void test_early_stopping(void **state) {
    (void)state;
    static const char head[] = "name: e\nbase: {model: {path: m}, data: {path: d.h5}, train: {max_steps: 40}}\n"
                               "stages:\n  - name: s\n    grid: {train.lr: [1e-4, 2e-4, 3e-4, 4e-4]}\n";
    char yaml[2048];
    ls_grid g, plain;
    snprintf(yaml, sizeof yaml, "%s    early_stopping: {type: asha, metric: val_loss, min_steps: 5}\n", head);
    load_ok(yaml, &g);
    const ls_grid_early_stopping *es = &g.stages[0].early_stopping;
    assert_int_equal(es->type, LS_GRID_ES_ASHA);
    assert_int_equal(es->min_steps, 5);
    assert_int_equal(es->eta, 3);
    assert_int_equal(es->line, 6);
    assert_non_null(strstr(g.canonical, "early_stopping: {type: asha, metric: val_loss, min_steps: 5, eta: 3}"));
    load_ok(head, &plain);
    assert_int_equal(plain.stages[0].early_stopping.type, LS_GRID_ES_NONE);
    assert_true(plain.hash != g.hash); /* another rule, another sweep */
    ls_grid_trial *a, *b;
    size_t na, nb;
    assert_int_equal(ls_grid_expand(&g, 0, NULL, &a, &na), LS_OK);
    assert_int_equal(ls_grid_expand(&plain, 0, NULL, &b, &nb), LS_OK);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) assert_true(a[i].id == b[i].id); /* the same trials: comparable runs */
    ls_grid_trials_free(a, na), ls_grid_trials_free(b, nb);
    assert_int_equal(ls_grid_extends(&plain, &g), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "early_stopping changed"));
    ls_grid_free(&g);
    snprintf(yaml, sizeof yaml, "%s    early_stopping: {type: median, min_steps: 5, eta: 2, min_trials: 2}\n", head);
    load_ok(yaml, &g);
    assert_int_equal(g.stages[0].early_stopping.type, LS_GRID_ES_MEDIAN);
    assert_int_equal(g.stages[0].early_stopping.min_trials, 2);
    assert_int_equal(g.stages[0].early_stopping.eta, 2);
    assert_int_equal(ls_grid_extends(&g, &g), LS_OK);
    ls_grid_free(&g);
    ls_grid_free(&plain);
    /* a single stage at the top level */
    load_ok("name: e\nbase: {model.path: m, data.path: d, train.max_steps: 9}\ngrid: {train.lr: [1e-4]}\n"
            "early_stopping: {type: median, min_steps: 3}\n", &g);
    assert_int_equal(g.stages[0].early_stopping.type, LS_GRID_ES_MEDIAN);
    ls_grid_free(&g);

    static const char *const cases[][2] = {
        {"    early_stopping: {type: asha, min_steps: 40}\n",
         "g.yaml:6: early_stopping.min_steps: 40 is not less than train.max_steps (40): no rung below the top"},
        {"    early_stopping: {type: asha, min_steps: 5, eta: 1}\n",
         "g.yaml:6: early_stopping.eta: 1 is out of range [2, 1000]"},
        {"    early_stopping: {type: hyperband, min_steps: 5}\n",
         "g.yaml:6: early_stopping.type: 'hyperband' is not one of asha, median"},
        {"    early_stopping: {type: asha, metric: mse, min_steps: 5}\n",
         "g.yaml:6: early_stopping.metric: 'mse' is not a metric early stopping can use: only val_loss (the validation "
         "loss at each rung)"},
        {"    early_stopping: {type: asha}\n", "g.yaml:6: early_stopping.min_steps: missing: the optimiser steps of the first rung"},
        {"    early_stopping: {min_steps: 5}\n", "g.yaml:6: early_stopping.type: missing: asha or median"},
        {"    early_stopping: {type: asha, min_steps: 0}\n", "g.yaml:6: early_stopping.min_steps: 0 is out of range [1, 1000000000]"},
        {"    early_stopping: {type: asha, min_steps: 5, min_trials: 2}\n", "g.yaml:6: early_stopping.min_trials: only for type median"},
        {"    early_stopping: {type: asha, min_steps: 5, patience: 2}\n",
         "g.yaml:6: early_stopping.patience: unknown key (expected type, metric, min_steps, eta, min_trials)"},
        {"    early_stopping: asha\n", "g.yaml:6: early_stopping: expected a mapping (type, metric, min_steps, eta, min_trials), got 'asha'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(yaml, sizeof yaml, "%s%s", head, cases[i][0]);
        const char *msg = load_error(yaml);
        if (strcmp(msg, cases[i][1])) fail_msg("case %zu:\n  got  %s\n  want %s", i, msg, cases[i][1]);
    }
    static const char *const files[][2] = {
        {"name: a\nbase: {model.path: m, data.path: d, train.max_steps: 40}\nstages:\n"
         "  - name: s\n    grid: {train.max_steps: [40, 80]}\n    early_stopping: {type: asha, min_steps: 5}\n",
         "g.yaml:5: train.max_steps: cannot be an axis of a stage with early_stopping (line 6): its rungs are defined "
         "over one max_steps"},
        /* 8 configurations, eta 3, rungs 5 15 (45 is past 40): 8 -> 2 -> 0 at the top, and t needs a winner */
        {"name: a\nbase: {model.path: m, data.path: d, train.max_steps: 40}\nstages:\n"
         "  - name: s\n    grid: {train.lr: [1e-4, 2e-4, 3e-4, 4e-4], lora.rank: [2, 4]}\n"
         "    early_stopping: {type: asha, min_steps: 5}\n"
         "  - {name: t, select: {from: s, keep: [train.lr]}, grid: {}}\n",
         "g.yaml:6: early_stopping: stage t selects from stage s, but ASHA would stop all of its 8 configurations below "
         "the top (eta 3 keeps 1 in 3 at each of its 2 rungs below max_steps: it needs at least 9 configurations)"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *msg = load_error(files[i][0]);
        if (strcmp(msg, files[i][1])) fail_msg("file %zu:\n  got  %s\n  want %s", i, msg, files[i][1]);
    }
    /* the same stage with nothing selecting from it loads: its rungs are informative on their own */
    load_ok("name: a\nbase: {model.path: m, data.path: d, train.max_steps: 40}\nstages:\n"
            "  - name: s\n    grid: {train.lr: [1e-4, 2e-4, 3e-4, 4e-4], lora.rank: [2, 4]}\n"
            "    early_stopping: {type: asha, min_steps: 5}\n", &g);
    ls_grid_free(&g);
}

/* Mutation fuzz: random damage to a valid grid, loaded from buffers of exactly its size (ASan sees
 * any overread); never crashes; a failure is one line naming the file; whatever loads expands. */
static void test_fuzz_mutations(void **state) {
    (void)state;
    const char *bases[4] = {course_yaml, course_flow, sampled_yaml, repeats_yaml};
    unsigned seed = 20251125;
    int loaded = 0, iters = 20000, per_base[4] = {0};
    static const char syntax[] = ":-[]{},#&*!|>'\"\n ?%@`\\.0e";
    for (int iter = 0; iter < iters; iter++) {
        const char *base = bases[iter & 3];
        size_t len;
        char *exact = mutated_copy(base, strlen(base), syntax, &seed, &len);
        ls_grid g;
        if (ls_grid_load_string(exact, len, "fuzz.yaml", "/g", &g) == LS_OK) {
            loaded++;
            per_base[iter & 3]++;
            for (size_t s = 0; s < g.n_stages; s++) {
                if (g.stages[s].select_from >= 0) continue;
                ls_grid_trial *t;
                size_t nt;
                if (ls_grid_expand(&g, s, NULL, &t, &nt) != LS_OK) fail_msg("expand: %s", ls_last_error());
                assert_int_equal(nt, g.stages[s].n_trials);
                ls_grid_trials_free(t, nt);
            }
            ls_grid_free(&g);
        } else {
            const char *msg = ls_last_error();
            if (strncmp(msg, "fuzz.yaml:", 10) || strchr(msg, '\n')) fail_msg("bad message: %s", msg);
            assert_null(g.name);
        }
        free(exact);
    }
    print_message("fuzz: %d of %d mutated grids loaded (%d, %d, %d, %d of each base)\n", loaded, iters, per_base[0],
                  per_base[1], per_base[2], per_base[3]);
    for (int b = 0; b < 4; b++) assert_true(per_base[b] > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_course), cmocka_unit_test(test_expand),
        cmocka_unit_test(test_select),      cmocka_unit_test(test_budget),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_huge_products),
        cmocka_unit_test(test_check_model), cmocka_unit_test(test_files),
        cmocka_unit_test(test_sampled),     cmocka_unit_test(test_log_uniform_ks),
        cmocka_unit_test(test_sobol),       cmocka_unit_test(test_repeats),
        cmocka_unit_test(test_select_repeats), cmocka_unit_test(test_budget_groups),
        cmocka_unit_test(test_sampled_errors), cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_fuzz_mutations),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
