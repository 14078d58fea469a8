/*
 * compare_hf.c: lorasweep's loss and LoRA gradients against the Hugging Face + PEFT reference
 * that hf_reference.py writes (tests/gpu/README.md).
 *
 *   compare_hf REF_DIR [cpu|cuda]
 *
 * Loads REF_DIR/model and REF_DIR/adapter with lorasweep's own loaders, runs one forward and
 * backward over REF_DIR/tokens.bin (B x T from reference.json, every next token a target, as
 * the reference's loss), and compares: the loss (relative difference), and each LoRA tensor's
 * gradient with REF_DIR/grads.safetensors (cosine similarity, norm ratio). Passes (exit 0) when
 * the loss agrees to 1e-3 relative and every tensor's cosine similarity exceeds 0.99 (the
 * issue's bar; fp32 against the float64 reference is expected to do far better, and the output
 * prints the numbers, so that a weaker agreement is visible rather than hidden by the bar).
 * Exit 77 when the CUDA backend is asked for and not usable.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/backend.h"
#include "lorasweep/common.h"
#include "lorasweep/model.h"
#include "lorasweep/qwen2.h"
#include "lorasweep/safetensors.h"

static int fail(const char *what) {
    fprintf(stderr, "compare_hf: %s: %s\n", what, ls_last_error());
    return 1;
}

/* The backend to compare; where CUDA was asked for and cannot run, the check is skipped (77). */
static const ls_backend *backend_named(const char *name) {
    const ls_backend *be = ls_backend_named(name, NULL, NULL, 0);
    if (!be && strcmp(name, "cuda") == 0) {
        printf("SKIPPED: %s\n", ls_last_error());
        exit(77);
    }
    if (!be) {
        fprintf(stderr, "compare_hf: %s\n", ls_last_error());
        exit(2);
    }
    return be;
}

static int json_number(const cJSON *root, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsNumber(v)) return ls_error("reference.json: '%s' is missing", key);
    *out = v->valuedouble;
    return LS_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: compare_hf REF_DIR [cpu|cuda]\n");
        return 2;
    }
    const char *dir = argv[1];
    const ls_backend *be = backend_named(argc > 2 ? argv[2] : "cuda");
    if (!be) return fail("backend");
    char path[4200];

    snprintf(path, sizeof path, "%s/reference.json", dir);
    size_t len;
    char *text = ls_read_file(path, &len);
    cJSON *ref = text ? cJSON_ParseWithLength(text, len) : NULL;
    double ref_loss, Bd, Td;
    if (!ref || json_number(ref, "loss", &ref_loss) || json_number(ref, "batch", &Bd) || json_number(ref, "ctx", &Td))
        return fail(path);
    int B = (int)Bd, T = (int)Td, N = B * T;

    ls_model host_m, m;
    ls_lora host_lora, lora, host_grads, grads;
    snprintf(path, sizeof path, "%s/model", dir);
    if (ls_model_load(path, &host_m) != LS_OK) return fail(path);
    snprintf(path, sizeof path, "%s/adapter", dir);
    if (ls_lora_load(path, &host_m.cfg, &host_lora) != LS_OK) return fail(path);
    ls_lora_like(&host_grads, &host_lora, &host_m.cfg);

    int32_t *ids = ls_malloc(sizeof(int32_t) * N), *targets = ls_malloc(sizeof(int32_t) * N);
    snprintf(path, sizeof path, "%s/tokens.bin", dir);
    char *raw = ls_read_file(path, &len);
    if (!raw) return fail(path);
    if (len != sizeof(int32_t) * (size_t)N) {
        fprintf(stderr, "compare_hf: %s has %zu bytes, expected %d x %d int32\n", path, len, B, T);
        return 1;
    }
    memcpy(ids, raw, len);
    free(raw);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) targets[b * T + t] = t + 1 < T ? ids[b * T + t + 1] : -1;
    long n_targets = (long)B * (T - 1);

    if (ls_model_to_backend(be, &host_m, &m) != LS_OK || ls_lora_to_backend(be, &host_lora, &lora) != LS_OK ||
        ls_lora_to_backend(be, &host_grads, &grads) != LS_OK)
        return fail("upload");
    ls_activations a;
    if (ls_activations_init(&a, be, &host_m.cfg, &lora, B, T) != LS_OK) return fail("activations");
    double t0 = ls_now();
    double loss = ls_qwen2_forward(be, &m, &lora, &a, ids, targets, B, T, &grads, 1.0f / (float)n_targets);
    ls_qwen2_backward(be, &m, &lora, &a, &grads, B, T);
    ls_lora_to_host(be, &grads, &host_grads);
    if (be->check() != LS_OK) return fail(be->name);
    double seconds = ls_now() - t0;
    loss /= (double)n_targets;

    snprintf(path, sizeof path, "%s/grads.safetensors", dir);
    ls_safetensors st;
    if (ls_safetensors_open(path, &st) != LS_OK) return fail(path);
    double min_cos = 2, dot_all = 0, n1_all = 0, n2_all = 0;
    char name[160], worst[160] = "";
    int compared = 0;
    for (int l = 0; l < host_m.cfg.layers; l++)
        for (int p = 0; p < LS_PROJ_COUNT; p++) {
            if (!(host_lora.targets & (1u << p))) continue;
            for (int is_b = 0; is_b < 2; is_b++) {
                const ls_lora_pair *g = &host_grads.pair[l * LS_PROJ_COUNT + p];
                int out_f, in_f;
                ls_proj_shape(&host_m.cfg, (ls_proj)p, &out_f, &in_f);
                size_t n = (size_t)host_lora.rank * (is_b ? out_f : in_f);
                ls_lora_tensor_name(name, sizeof name, l, (ls_proj)p, is_b);
                const ls_st_tensor *t = ls_safetensors_find(&st, name);
                if (!t || t->numel != n) {
                    fprintf(stderr, "compare_hf: %s: '%s' missing or of another size\n", path, name);
                    return 1;
                }
                float *r = ls_malloc(sizeof(float) * n);
                if (ls_safetensors_read_f32(&st, t, r) != LS_OK) return fail(path);
                const float *ours = is_b ? g->b : g->a;
                double dot = 0, n1 = 0, n2 = 0;
                for (size_t i = 0; i < n; i++) dot += (double)ours[i] * r[i], n1 += (double)ours[i] * ours[i], n2 += (double)r[i] * r[i];
                double cos = dot / sqrt(n1 * n2 > 0 ? n1 * n2 : 1);
                if (cos < min_cos || cos != cos) min_cos = cos, snprintf(worst, sizeof worst, "%s", name);
                dot_all += dot, n1_all += n1, n2_all += n2;
                compared++;
                free(r);
            }
        }
    ls_safetensors_close(&st);
    double rel_loss = fabs(loss - ref_loss) / fabs(ref_loss);
    double cos_all = dot_all / sqrt(n1_all * n2_all), norm_ratio = sqrt(n1_all / n2_all);
    int ok = rel_loss < 1e-3 && min_cos > 0.99;
    printf("{\"backend\": \"%s\", \"loss\": %.9g, \"ref_loss\": %.9g, \"rel_loss\": %.3e, \"tensors\": %d, "
           "\"min_cosine\": %.9f, \"min_cosine_tensor\": \"%s\", \"cosine_all\": %.9f, \"norm_ratio\": %.9f, "
           "\"seconds\": %.3f, \"pass\": %s}\n",
           be->name, loss, ref_loss, rel_loss, compared, min_cos, worst, cos_all, norm_ratio, seconds,
           ok ? "true" : "false");
    ls_activations_free(&a, be);
    ls_lora_backend_free(be, &grads);
    ls_lora_backend_free(be, &lora);
    ls_model_backend_free(be, &m);
    ls_lora_free(&host_grads);
    ls_lora_free(&host_lora);
    ls_model_free(&host_m);
    cJSON_Delete(ref);
    free(text), free(ids), free(targets);
    return ok ? 0 : 1;
}
