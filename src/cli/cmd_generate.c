/* cmd_generate.c: `lorasweep generate`: continue a prompt with a model (+ adapter). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/backend.h"
#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/generate.h"

static const char usage[] =
    "usage: lorasweep generate --model DIR [--adapter DIR] --prompt TEXT --max-new-tokens N\n"
    "                          [--greedy | --temperature T --top-p P --top-k K] [--seed S]\n"
    "                          [--llmtime-grammar VARS,DECIMALS] [--ids] [--tokenizer FILE]\n"
    "\n"
    "Continues TEXT (tokenized without special tokens) and prints the new text, or with --ids\n"
    "{\"ids\": [...]}. Generation stops after N tokens or at the end-of-sequence token.\n"
    "  --greedy                 always take the most likely token (not with the sampling options)\n"
    "  --temperature T          sampling temperature (default 1.0)\n"
    "  --top-p P, --top-k K     nucleus and top-k truncation (defaults 1.0 and 0 = off)\n"
    "  --seed S                 sampling seed (default 0)\n"
    "  --llmtime-grammar V,D    only sample text that parses as LLMTIME with V variables and\n"
    "                           D decimals (e.g. 2,3)\n"
    "  --tokenizer FILE         tokenizer.json (default: DIR/tokenizer.json)\n";

int cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},       {"adapter", required_argument, 0, 'a'},
        {"prompt", required_argument, 0, 'p'},      {"max-new-tokens", required_argument, 0, 'n'},
        {"greedy", no_argument, 0, 'g'},            {"temperature", required_argument, 0, 'T'},
        {"top-p", required_argument, 0, 'P'},       {"top-k", required_argument, 0, 'K'},
        {"seed", required_argument, 0, 's'},        {"ids", no_argument, 0, 'i'},
        {"tokenizer", required_argument, 0, 'k'},   {"llmtime-grammar", required_argument, 0, 'G'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    const char *model_dir = NULL, *adapter_dir = NULL, *prompt = NULL, *tok_path = NULL, *grammar_spec = NULL;
    long max_new = -1, top_k = 0, seed = 0;
    double temperature = 1.0, top_p = 1.0;
    int greedy = 0, print_ids = 0, c;
    const char *sampling_opt = NULL; /* the last of --temperature, --top-p, --top-k given */
    while ((c = getopt_long(argc, argv, ":m:a:p:n:gT:P:K:s:ik:G:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'a': adapter_dir = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n': bad = cli_long("generate", "max-new-tokens", optarg, 0, 1 << 20, &max_new); break;
        case 'g': greedy = 1; break;
        case 'T':
            bad = cli_double("generate", "temperature", optarg, 1e-6, 1e6, &temperature);
            sampling_opt = "--temperature";
            break;
        case 'P':
            bad = cli_double("generate", "top-p", optarg, 1e-9, 1.0, &top_p);
            sampling_opt = "--top-p";
            break;
        case 'K':
            bad = cli_long("generate", "top-k", optarg, 0, 1 << 30, &top_k);
            sampling_opt = "--top-k";
            break;
        case 's': bad = cli_long("generate", "seed", optarg, 0, 0x7fffffffffffffffL, &seed); break;
        case 'i': print_ids = 1; break;
        case 'k': tok_path = optarg; break;
        case 'G': grammar_spec = optarg; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("generate", argv);
        }
        if (bad) return bad;
    }
    if (optind < argc) return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (!model_dir) return cli_usage_error("generate", "--model DIR is required");
    if (!prompt) return cli_usage_error("generate", "--prompt TEXT is required");
    if (max_new < 0) return cli_usage_error("generate", "--max-new-tokens N is required");
    if (greedy && sampling_opt) /* greedy decoding ignores them: say so rather than drop them */
        return cli_usage_error("generate", "--greedy takes the most likely token, so %s (a sampling option) would "
                                           "do nothing: give one or the other", sampling_opt);
    int g_vars = 0, g_decimals = 0;
    if (grammar_spec && (sscanf(grammar_spec, "%d,%d", &g_vars, &g_decimals) != 2 || g_vars < 1 || g_vars > 64 ||
                         g_decimals < 0 || g_decimals > 8))
        return cli_usage_error("generate", "--llmtime-grammar wants VARS,DECIMALS such as 2,3");

    char tok_default[4096];
    if (!tok_path) {
        snprintf(tok_default, sizeof tok_default, "%s/tokenizer.json", model_dir);
        tok_path = tok_default;
    }
    const ls_backend *be = ls_backend_cpu();
    int rc = CLI_EXIT_FAIL;
    ls_model model = {0};
    ls_lora lora = {0};
    ls_kv_state kv = {0};
    ls_tokens ids = {0};
    ls_generation gen = {0};
    ls_llmtime_grammar grammar;
    ls_tokenizer *tok = ls_tokenizer_load(tok_path);
    if (!tok || ls_tokenizer_encode(tok, prompt, strlen(prompt), &ids) != LS_OK) goto done;
    if (ids.n == 0) {
        ls_error("the prompt has no tokens");
        goto done;
    }
    if (grammar_spec && ls_grammar_init(&grammar, tok, g_vars, g_decimals) != LS_OK) goto done;
    if (ls_model_load(model_dir, &model) != LS_OK) goto done;
    if (ls_model_check_tokenizer(&model.cfg, ls_tokenizer_n_ids(tok), tok_path) != LS_OK) goto done;
    if (adapter_dir && ls_lora_load(adapter_dir, &model.cfg, &lora) != LS_OK) goto done;
    int T_max = (int)ids.n + (int)max_new;
    if (T_max > model.cfg.max_positions) {
        ls_error("prompt + new tokens = %d positions, more than the model's %d", T_max, model.cfg.max_positions);
        goto done;
    }
    if (ls_kv_init(&kv, be, &model.cfg, adapter_dir ? &lora : NULL, 1, T_max, (int)ids.n < 256 ? (int)ids.n : 256) !=
        LS_OK)
        goto done;
    ls_sampler sp = {greedy, (float)temperature, (float)top_p, (int)top_k};
    if (max_new > 0 && ls_generate(be, &model, adapter_dir ? &lora : NULL, &kv, ids.ids, (int)ids.n, 1, (int)max_new,
                                   &sp, grammar_spec ? &grammar : NULL, -1, 0, model.cfg.eos_id, (uint64_t)seed,
                                   &gen) != LS_OK)
        goto done;
    int n = max_new > 0 ? gen.n[0] : 0;
    if (print_ids) {
        printf("{\"ids\": [");
        for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", gen.ids[i]);
        printf("]}\n");
    } else {
        char *text = ls_tokenizer_decode(tok, gen.ids, (size_t)n, NULL);
        if (!text) goto done;
        printf("%s\n", text);
        free(text);
    }
    rc = CLI_EXIT_OK;
done:
    if (rc != CLI_EXIT_OK) cli_fail();
    ls_generation_free(&gen);
    ls_kv_free(&kv, be);
    if (lora.arena) ls_lora_free(&lora);
    ls_model_free(&model);
    ls_tokens_free(&ids);
    ls_tokenizer_free(tok);
    return rc;
}
