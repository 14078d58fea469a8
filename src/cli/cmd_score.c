/* cmd_score.c: `lorasweep score`: the mean next-token loss of a model (+ adapter) over the lines
 * of a text file, and optionally its gradient with respect to the adapter. This is how the
 * trainer is checked against independent implementations (../shared/golden). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/backend.h"
#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/model.h"
#include "lorasweep/qwen2.h"
#include "lorasweep/safetensors.h"
#include "lorasweep/tokenizer.h"

static const char usage[] =
    "usage: lorasweep score --model DIR [--adapter DIR] --text FILE [--grad-out FILE]\n"
    "                       [--tokenizer FILE]\n"
    "\n"
    "Prints {\"loss\": L, \"tokens\": N}: the mean cross-entropy (natural log) of predicting token\n"
    "t+1 from tokens 0..t over every position of every line of FILE. Each line is tokenized on\n"
    "its own, without special tokens; empty lines are skipped.\n"
    "  --model DIR       a Hugging Face checkpoint directory (config.json, model.safetensors)\n"
    "  --adapter DIR     a PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors)\n"
    "  --text FILE       the text, one sequence per line\n"
    "  --grad-out FILE   write d loss / d adapter tensors as safetensors under PEFT names\n"
    "                    (needs --adapter)\n"
    "  --tokenizer FILE  tokenizer.json (default: DIR/tokenizer.json)\n";

/* Tokenize each non-empty line; returns the number of sequences, their ids in *seqs. */
static int tokenize_lines(const ls_tokenizer *tok, char *text, size_t len, ls_tokens **seqs, int *n_seqs) {
    int n = 0, cap = 0;
    ls_tokens *out = NULL;
    for (char *line = text, *end; line < text + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(text + len - line));
        if (!end) end = text + len;
        size_t n_bytes = (size_t)(end - line);
        if (n_bytes && line[n_bytes - 1] == '\r') n_bytes--;
        if (n_bytes == 0) continue;
        if (n == cap) out = ls_realloc(out, sizeof(ls_tokens) * (size_t)(cap = cap * 2 + 8));
        out[n] = (ls_tokens){0};
        if (ls_tokenizer_encode(tok, line, n_bytes, &out[n]) != LS_OK) {
            for (int i = 0; i <= n; i++) ls_tokens_free(&out[i]);
            free(out);
            return ls_error_prefix("line %d", n + 1);
        }
        n++;
    }
    *seqs = out;
    *n_seqs = n;
    return LS_OK;
}

static int write_grads(const char *path, const ls_lora *grads, const ls_model_config *cfg) {
    ls_st_write *t = ls_calloc((size_t)cfg->layers * LS_PROJ_COUNT * 2, sizeof(ls_st_write));
    char (*names)[128] = ls_calloc((size_t)cfg->layers * LS_PROJ_COUNT * 2, sizeof *names);
    int n = 0;
    for (int l = 0; l < cfg->layers; l++)
        for (int p = 0; p < LS_PROJ_COUNT; p++) {
            if (!(grads->targets & (1u << p))) continue;
            int out_f, in_f;
            ls_proj_shape(cfg, (ls_proj)p, &out_f, &in_f);
            const ls_lora_pair *pair = &grads->pair[l * LS_PROJ_COUNT + p];
            for (int is_b = 0; is_b < 2; is_b++) {
                ls_lora_tensor_name(names[n], sizeof names[n], l, (ls_proj)p, is_b);
                t[n] = (ls_st_write){.name = names[n], .dtype = LS_ST_F32, .rank = 2,
                                     .data = is_b ? pair->b : pair->a};
                t[n].shape[0] = is_b ? out_f : grads->rank;
                t[n].shape[1] = is_b ? grads->rank : in_f;
                n++;
            }
        }
    int rc = ls_safetensors_write(path, t, n, NULL, 0);
    free(t);
    free(names);
    return rc;
}

int cmd_score(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},    {"adapter", required_argument, 0, 'a'},
        {"text", required_argument, 0, 't'},     {"grad-out", required_argument, 0, 'g'},
        {"tokenizer", required_argument, 0, 'k'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model_dir = NULL, *adapter_dir = NULL, *text_path = NULL, *grad_path = NULL, *tok_path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":m:a:t:g:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'a': adapter_dir = optarg; break;
        case 't': text_path = optarg; break;
        case 'g': grad_path = optarg; break;
        case 'k': tok_path = optarg; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("score", argv);
        }
    }
    if (optind < argc) return cli_usage_error("score", "unexpected argument '%s'", argv[optind]);
    if (!model_dir) return cli_usage_error("score", "--model DIR is required");
    if (!text_path) return cli_usage_error("score", "--text FILE is required");
    if (grad_path && !adapter_dir) return cli_usage_error("score", "--grad-out needs --adapter");

    char tok_default[4096];
    if (!tok_path) {
        snprintf(tok_default, sizeof tok_default, "%s/tokenizer.json", model_dir);
        tok_path = tok_default;
    }
    int rc = CLI_EXIT_FAIL;
    ls_model model = {0};
    ls_lora lora = {0}, grads = {0};
    ls_activations acts = {0};
    ls_tokens *seqs = NULL;
    int n_seqs = 0;
    const ls_backend *be = ls_backend_cpu();
    size_t text_len;
    char *text = ls_read_file(text_path, &text_len);
    ls_tokenizer *tok = text ? ls_tokenizer_load(tok_path) : NULL;
    if (!tok) goto done;
    if (tokenize_lines(tok, text, text_len, &seqs, &n_seqs) != LS_OK) {
        ls_error_prefix("%s", text_path);
        goto done;
    }
    if (ls_model_load(model_dir, &model) != LS_OK) goto done;
    if (ls_model_check_tokenizer(&model.cfg, ls_tokenizer_n_ids(tok), tok_path) != LS_OK) goto done;
    if (adapter_dir && ls_lora_load(adapter_dir, &model.cfg, &lora) != LS_OK) goto done;

    long targets_total = 0;
    int T_max = 1;
    for (int i = 0; i < n_seqs; i++) {
        targets_total += (long)seqs[i].n - 1;
        if ((int)seqs[i].n > T_max) T_max = (int)seqs[i].n;
    }
    if (targets_total <= 0) {
        ls_error("%s: no line has two or more tokens, nothing to score", text_path);
        goto done;
    }
    if (T_max > model.cfg.max_positions) {
        ls_error("%s: a line has %d tokens, more than the model's %d positions", text_path, T_max,
                 model.cfg.max_positions);
        goto done;
    }
    if (ls_activations_init(&acts, be, &model.cfg, adapter_dir ? &lora : NULL, 1, T_max) != LS_OK) goto done;
    if (grad_path) ls_lora_like(&grads, &lora, &model.cfg);

    /* One line at a time: each its own sequence, positions from 0. */
    int32_t *targets = ls_malloc(sizeof(int32_t) * (size_t)T_max);
    double loss = 0;
    for (int i = 0; i < n_seqs; i++) {
        int T = (int)seqs[i].n;
        for (int t = 0; t < T; t++) targets[t] = t + 1 < T ? seqs[i].ids[t + 1] : -1;
        loss += ls_qwen2_forward(be, &model, adapter_dir ? &lora : NULL, &acts, seqs[i].ids, targets, 1, T,
                                 grad_path ? &grads : NULL, (float)(1.0 / (double)targets_total));
        if (grad_path) ls_qwen2_backward(be, &model, &lora, &acts, &grads, 1, T);
    }
    free(targets);
    if (grad_path && write_grads(grad_path, &grads, &model.cfg) != LS_OK) goto done;
    printf("{\"loss\": %.10g, \"tokens\": %ld}\n", loss / (double)targets_total, targets_total);
    rc = CLI_EXIT_OK;
done:
    if (rc != CLI_EXIT_OK) cli_fail();
    ls_activations_free(&acts, be);
    if (grads.arena) ls_lora_free(&grads);
    if (lora.arena) ls_lora_free(&lora);
    ls_model_free(&model);
    for (int i = 0; i < n_seqs; i++) ls_tokens_free(&seqs[i]);
    free(seqs);
    ls_tokenizer_free(tok);
    free(text);
    return rc;
}
