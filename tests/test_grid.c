/*
 * test_grid.c: grid files: loading the course experiment, expansion (counts, order, overrides,
 * ids equal to the equivalent trial file's), winners, the budget plan, every error class with its
 * exact message and line, the trial cap, the shipped grid files, and a mutation fuzz of the
 * loader from exact-size buffers (run it under the sanitizer build too).
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
        {"grdi: {}\n", "g.yaml:8: grdi: unknown key (expected name, budget_flops, max_attempts, base, grid, stages)"},
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
        {"name: a\n", "g.yaml:1: grid: missing: give grid (axes) or stages"},
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
        {"name: a\nstages: [{name: s, nmae: t}]\n", "g.yaml:2: nmae: unknown key in a stage (expected name, grid, select)"},
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

/* Mutation fuzz: random damage to a valid grid, loaded from buffers of exactly its size (ASan sees
 * any overread); never crashes; a failure is one line naming the file; whatever loads expands. */
static void test_fuzz_mutations(void **state) {
    (void)state;
    const char *bases[2] = {course_yaml, course_flow};
    unsigned seed = 20251125;
    int loaded = 0, iters = 20000;
    static const char syntax[] = ":-[]{},#&*!|>'\"\n ?%@`\\.0e";
    for (int iter = 0; iter < iters; iter++) {
        const char *base = bases[iter & 1];
        size_t len;
        char *exact = mutated_copy(base, strlen(base), syntax, &seed, &len);
        ls_grid g;
        if (ls_grid_load_string(exact, len, "fuzz.yaml", "/g", &g) == LS_OK) {
            loaded++;
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
    print_message("fuzz: %d of %d mutated grids loaded\n", loaded, iters);
    assert_true(loaded > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_course), cmocka_unit_test(test_expand),
        cmocka_unit_test(test_select),      cmocka_unit_test(test_budget),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_huge_products),
        cmocka_unit_test(test_check_model), cmocka_unit_test(test_files),
        cmocka_unit_test(test_fuzz_mutations),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
