/* cmd_flops.c: `lorasweep flops`: the FLOPS of a training run and its evaluation, as JSON. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/flops.h"
#include "lorasweep/model.h"

#define FLOPS_BUDGET 1e17 /* the course's budget for all experiments */

static const char usage[] =
    "usage: lorasweep flops --model DIR --ctx T --rank R --batch B --steps N\n"
    "                       [--targets q_proj,v_proj] [--no-head-bias]\n"
    "                       [--eval-systems S --eval-prompt-tokens P --eval-new-tokens N\n"
    "                        [--eval-samples 10]]\n"
    "\n"
    "Counts FLOPS by the course's rules (docs/flops.md) and prints JSON: forward (one sequence\n"
    "of T tokens), loss, train_step (B sequences, forward + backward), train_total (N steps),\n"
    "generate (with the --eval options), total, budget_fraction of 1e17, experiments_in_budget,\n"
    "and breakdown (the forward of one sequence, per operation).\n"
    "  --model DIR           a checkpoint directory (only its config.json is read) or a config.json\n"
    "  --ctx T               tokens per training sequence\n"
    "  --rank R              LoRA rank (>= 1)\n"
    "  --batch B             sequences per optimiser step\n"
    "  --steps N             optimiser steps\n"
    "  --targets LIST        projections with a LoRA branch, comma-separated, from q_proj k_proj\n"
    "                        v_proj o_proj gate_proj up_proj down_proj (default q_proj,v_proj)\n"
    "  --no-head-bias        no trainable bias on the output head (default: one)\n"
    "  --eval-systems S      test systems forecast after training; enables `generate`\n"
    "  --eval-samples K      sampled forecasts per system (default 10), each with its own prefill\n"
    "  --eval-prompt-tokens P   tokens of each prompt\n"
    "  --eval-new-tokens N   tokens generated per sample\n";

/* "q_proj,v_proj" -> bitmask; a usage error naming the bad name otherwise. */
static int parse_targets(const char *list, unsigned *out) {
    unsigned mask = 0;
    char *copy = ls_strdup(list), *save = NULL;
    int rc = CLI_EXIT_OK;
    for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        int p = 0;
        while (p < LS_PROJ_COUNT && strcmp(name, ls_proj_names[p]) != 0) p++;
        if (p == LS_PROJ_COUNT) {
            rc = cli_usage_error("flops", "--targets: unknown projection '%s' (q_proj, k_proj, v_proj, o_proj, "
                                          "gate_proj, up_proj or down_proj)", name);
            break;
        }
        mask |= 1u << p;
    }
    free(copy);
    if (rc == CLI_EXIT_OK && mask == 0) rc = cli_usage_error("flops", "--targets: no projection named");
    *out = mask;
    return rc;
}

/* DIR/config.json, or the path itself when it is a file. */
static int load_config(const char *model, ls_model_config *cfg) {
    struct stat st;
    if (stat(model, &st) == 0 && S_ISREG(st.st_mode)) return ls_model_config_load(model, cfg);
    if (stat(model, &st) != 0 || !S_ISDIR(st.st_mode)) return ls_error("%s: no such model directory", model);
    size_t n = strlen(model) + sizeof "/config.json";
    char *path = ls_malloc(n);
    snprintf(path, n, "%s/config.json", model);
    int rc = ls_model_config_load(path, cfg);
    free(path);
    return rc;
}

int cmd_flops(int argc, char **argv) {
    enum { OPT_NO_HEAD_BIAS = 256, OPT_SYSTEMS, OPT_SAMPLES, OPT_PROMPT, OPT_NEW };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"ctx", required_argument, 0, 'T'},
        {"rank", required_argument, 0, 'r'},
        {"batch", required_argument, 0, 'B'},
        {"steps", required_argument, 0, 'n'},
        {"targets", required_argument, 0, 't'},
        {"no-head-bias", no_argument, 0, OPT_NO_HEAD_BIAS},
        {"eval-systems", required_argument, 0, OPT_SYSTEMS},
        {"eval-samples", required_argument, 0, OPT_SAMPLES},
        {"eval-prompt-tokens", required_argument, 0, OPT_PROMPT},
        {"eval-new-tokens", required_argument, 0, OPT_NEW},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL;
    long ctx = -1, rank = -1, batch = -1, steps = -1, systems = -1, samples = 10, prompt = -1, new_tokens = -1;
    int head_bias = 1, any_eval = 0, c, rc;
    unsigned targets = (1u << LS_PROJ_Q) | (1u << LS_PROJ_V);
    while ((c = getopt_long(argc, argv, ":m:T:r:B:n:t:h", opts, NULL)) != -1) {
        rc = CLI_EXIT_OK;
        switch (c) {
        case 'm': model = optarg; break;
        case 'T': rc = cli_long("flops", "ctx", optarg, 1, INT_MAX, &ctx); break;
        case 'r': rc = cli_long("flops", "rank", optarg, 1, INT_MAX, &rank); break;
        case 'B': rc = cli_long("flops", "batch", optarg, 1, INT_MAX, &batch); break;
        case 'n': rc = cli_long("flops", "steps", optarg, 0, LONG_MAX, &steps); break;
        case 't': rc = parse_targets(optarg, &targets); break;
        case OPT_NO_HEAD_BIAS: head_bias = 0; break;
        case OPT_SYSTEMS: rc = cli_long("flops", "eval-systems", optarg, 1, INT_MAX, &systems); break;
        case OPT_SAMPLES: rc = cli_long("flops", "eval-samples", optarg, 1, INT_MAX, &samples); any_eval = 1; break;
        case OPT_PROMPT: rc = cli_long("flops", "eval-prompt-tokens", optarg, 1, INT_MAX, &prompt); any_eval = 1; break;
        case OPT_NEW: rc = cli_long("flops", "eval-new-tokens", optarg, 1, INT_MAX, &new_tokens); any_eval = 1; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("flops", argv);
        }
        if (rc != CLI_EXIT_OK) return rc;
    }
    if (optind < argc) return cli_usage_error("flops", "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error("flops", "--model DIR is required");
    if (ctx < 0) return cli_usage_error("flops", "--ctx T is required");
    if (rank < 0) return cli_usage_error("flops", "--rank R is required");
    if (batch < 0) return cli_usage_error("flops", "--batch B is required");
    if (steps < 0) return cli_usage_error("flops", "--steps N is required");
    if (systems < 0 && any_eval) return cli_usage_error("flops", "the --eval options need --eval-systems S");
    if (systems >= 0 && (prompt < 0 || new_tokens < 0))
        return cli_usage_error("flops", "--eval-systems needs --eval-prompt-tokens P and --eval-new-tokens N");

    ls_model_config cfg;
    if (load_config(model, &cfg) != LS_OK) return cli_fail();
    const ls_flops_lora lora = {(int)rank, targets, head_bias};
    ls_flops_breakdown fwd;
    double loss, step, train;
    if (ls_flops_forward(&cfg, (int)ctx, &lora, &fwd) != LS_OK || ls_flops_loss(&cfg, (int)ctx, &loss) != LS_OK ||
        ls_flops_train_step(&cfg, (int)ctx, (int)batch, &lora, &step) != LS_OK ||
        ls_flops_train_total(&cfg, (int)ctx, (int)batch, steps, &lora, &train) != LS_OK)
        return cli_fail();
    ls_flops_gen gen = {0};
    if (systems >= 0 && ls_flops_generate(&cfg, &lora, (int)prompt, (int)new_tokens, (int)samples, &gen) != LS_OK)
        return cli_fail();
    const double generate = systems >= 0 ? (double)systems * gen.total : 0.0;
    const double total = train + generate;

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", model);
    cJSON_AddNumberToObject(root, "ctx", (double)ctx);
    cJSON_AddNumberToObject(root, "rank", (double)rank);
    cJSON_AddNumberToObject(root, "batch", (double)batch);
    cJSON_AddNumberToObject(root, "steps", (double)steps);
    cJSON *tl = cJSON_AddArrayToObject(root, "targets");
    for (int p = 0; p < LS_PROJ_COUNT; p++)
        if (targets & (1u << p)) cJSON_AddItemToArray(tl, cJSON_CreateString(ls_proj_names[p]));
    cJSON_AddBoolToObject(root, "head_bias", head_bias);
    cJSON_AddNumberToObject(root, "forward", fwd.total);
    cJSON_AddNumberToObject(root, "loss", loss);
    cJSON_AddNumberToObject(root, "train_step", step);
    cJSON_AddNumberToObject(root, "train_total", train);
    if (systems >= 0) {
        cJSON_AddNumberToObject(root, "generate", generate);
        cJSON *g = cJSON_AddObjectToObject(root, "generate_detail");
        cJSON_AddNumberToObject(g, "systems", (double)systems);
        cJSON_AddNumberToObject(g, "samples", (double)samples);
        cJSON_AddNumberToObject(g, "prompt_tokens", (double)prompt);
        cJSON_AddNumberToObject(g, "new_tokens", (double)new_tokens);
        cJSON_AddNumberToObject(g, "prefill_per_sample", gen.prefill);
        cJSON_AddNumberToObject(g, "decode_per_sample", gen.decode);
        cJSON_AddNumberToObject(g, "sampling_per_sample", gen.sampling);
        cJSON_AddNumberToObject(g, "per_system", gen.total);
    }
    cJSON_AddNumberToObject(root, "total", total);
    cJSON_AddNumberToObject(root, "budget", FLOPS_BUDGET);
    cJSON_AddNumberToObject(root, "budget_fraction", total / FLOPS_BUDGET);
    if (total > 0) cJSON_AddNumberToObject(root, "experiments_in_budget", floor(FLOPS_BUDGET / total));
    cJSON *bd = cJSON_AddObjectToObject(root, "breakdown");
    for (int i = 0; i < LS_FLOPS_OP_COUNT; i++) cJSON_AddNumberToObject(bd, ls_flops_op_names[i], fwd.op[i]);
    char *json = cJSON_Print(root);
    puts(json);
    free(json);
    cJSON_Delete(root);
    return CLI_EXIT_OK;
}
