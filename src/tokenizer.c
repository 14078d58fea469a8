/*
 * tokenizer.c: byte-level BPE from a Hugging Face tokenizer.json (the Qwen2 family).
 *
 * Design:
 *  - tokenizer.json is untrusted input: every field is checked and anything this code does not
 *    implement exactly (another model type, normaliser or pre-tokenizer) is refused with an error
 *    rather than tokenized differently from Hugging Face.
 *  - Token strings live in one arena; a string -> id table and a (left id, right id) -> merge
 *    table are open-addressing hash tables sized once at load, so encoding allocates nothing but
 *    its output and scratch for the current piece.
 *  - BPE works on ids, not strings: a piece starts as one id per byte (the byte-level alphabet is
 *    always in the vocabulary) and adjacent pairs merge lowest rank first, leftmost on ties, as
 *    the Hugging Face implementation does.
 *  - The pre-tokenizer regex is compiled from the file's own pattern with PCRE2 (UTF + Unicode
 *    properties, JIT when available); NFC comes from utf8proc.
 */
#include "lorasweep/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "lorasweep/common.h"

enum { MAX_IDS = 1 << 24 };

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    int normalized; /* matched after NFC (1) or in the raw text (0) */
} added_token;

typedef struct {
    uint64_t key; /* (left << 32 | right) + 1; 0 marks an empty slot */
    int32_t rank, merged;
} merge_slot;

struct ls_tokenizer {
    int32_t n_ids;
    char *arena;          /* all token strings, NUL-terminated */
    uint32_t *str_off;    /* (n_ids) offset of each id's string in arena, UINT32_MAX if unused */
    uint32_t *str_len;    /* (n_ids) */
    uint8_t *is_added;    /* (n_ids) 1 for added tokens: decoded verbatim, not byte-mapped */
    int32_t *vocab_slots; /* string -> id hash table, -1 empty */
    size_t vocab_mask;
    merge_slot *merges;
    size_t merge_mask;
    added_token *added;
    int n_added;
    uint8_t added_first_byte[256]; /* quick filter: can an added token start with this byte? */
    int nfc;
    pcre2_code *split_re;
    pcre2_match_data *match_data;
    int32_t byte_id[256];       /* id of the one-byte token of each byte */
    int16_t byte_of_cp[512];    /* byte-level alphabet: code point -> byte, -1 if none */
};

/* ---- hashing ---------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static size_t table_size_for(size_t n) {
    size_t size = 16;
    while (size < 2 * n) size <<= 1;
    return size;
}

static int32_t vocab_find(const ls_tokenizer *tok, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & tok->vocab_mask;; i = (i + 1) & tok->vocab_mask) {
        int32_t id = tok->vocab_slots[i];
        if (id < 0) return -1;
        if (tok->str_len[id] == n && memcmp(tok->arena + tok->str_off[id], s, n) == 0) return id;
    }
}

static void vocab_insert(ls_tokenizer *tok, int32_t id) {
    const char *s = tok->arena + tok->str_off[id];
    size_t i = hash_bytes(s, tok->str_len[id]) & tok->vocab_mask;
    while (tok->vocab_slots[i] >= 0) i = (i + 1) & tok->vocab_mask;
    tok->vocab_slots[i] = id;
}

static const merge_slot *merge_find(const ls_tokenizer *tok, int32_t left, int32_t right) {
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    for (size_t i = hash_u64(key) & tok->merge_mask;; i = (i + 1) & tok->merge_mask) {
        if (tok->merges[i].key == key) return &tok->merges[i];
        if (tok->merges[i].key == 0) return NULL;
    }
}

/* ---- the byte-level alphabet (GPT-2's bytes_to_unicode) ---------------------------------- */

static int byte_to_codepoint(int b, int *next_extra) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    return 256 + (*next_extra)++;
}

/* Encode code point cp (< 0x800) as UTF-8 into out; returns the byte count. */
static int utf8_put(int cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* ---- loading ----------------------------------------------------------------------------- */

static int load_vocab(ls_tokenizer *tok, const cJSON *vocab, const cJSON *added_tokens) {
    if (!cJSON_IsObject(vocab)) return ls_error("model.vocab is missing or not an object");
    /* Ids come from the vocabulary and the added tokens; size the tables for the largest. */
    int32_t max_id = -1;
    size_t arena_size = 0, n_strings = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= MAX_IDS ||
            it->valuedouble != (double)(int32_t)it->valuedouble)
            return ls_error("model.vocab[\"%.40s\"] is not an id in [0, %d)", it->string, MAX_IDS);
        if (it->valueint > max_id) max_id = it->valueint;
        arena_size += strlen(it->string) + 1;
        n_strings++;
    }
    cJSON_ArrayForEach(it, added_tokens) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= MAX_IDS ||
            id->valuedouble != (double)(int32_t)id->valuedouble || !cJSON_IsString(content) ||
            content->valuestring[0] == '\0')
            return ls_error("added_tokens has an entry without a valid id and non-empty content");
        if (id->valueint > max_id) max_id = id->valueint;
        arena_size += strlen(content->valuestring) + 1;
        n_strings++;
    }
    if (n_strings == 0) return ls_error("model.vocab is empty");
    if (arena_size >= UINT32_MAX) return ls_error("model.vocab is too large");
    tok->n_ids = max_id + 1;
    tok->arena = ls_malloc(arena_size);
    tok->str_off = ls_malloc(sizeof(uint32_t) * (size_t)tok->n_ids);
    tok->str_len = ls_calloc((size_t)tok->n_ids, sizeof(uint32_t));
    tok->is_added = ls_calloc((size_t)tok->n_ids, 1);
    memset(tok->str_off, 0xFF, sizeof(uint32_t) * (size_t)tok->n_ids);
    size_t vocab_size = table_size_for(n_strings);
    tok->vocab_mask = vocab_size - 1;
    tok->vocab_slots = ls_malloc(sizeof(int32_t) * vocab_size);
    memset(tok->vocab_slots, 0xFF, sizeof(int32_t) * vocab_size);

    size_t used = 0;
    int n_added = cJSON_GetArraySize(added_tokens);
    tok->added = ls_calloc((size_t)(n_added > 0 ? n_added : 1), sizeof(added_token));
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *list = pass == 0 ? vocab : added_tokens;
        cJSON_ArrayForEach(it, list) {
            const char *s;
            int32_t id;
            if (pass == 0) {
                s = it->string;
                id = it->valueint;
            } else {
                s = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
                id = cJSON_GetObjectItemCaseSensitive(it, "id")->valueint;
            }
            size_t n = strlen(s);
            if (tok->str_off[id] != UINT32_MAX) {
                /* An added token may repeat a vocabulary entry with the same string. */
                if (pass == 1 && tok->str_len[id] == n && !memcmp(tok->arena + tok->str_off[id], s, n)) {
                    tok->is_added[id] = 1;
                    goto record_added;
                }
                return ls_error("id %d is given to two different tokens", id);
            }
            if (vocab_find(tok, s, n) >= 0) return ls_error("token \"%.40s\" appears twice", s);
            memcpy(tok->arena + used, s, n + 1);
            tok->str_off[id] = (uint32_t)used;
            tok->str_len[id] = (uint32_t)n;
            used += n + 1;
            vocab_insert(tok, id);
            if (pass == 0) continue;
            tok->is_added[id] = 1;
        record_added:;
            const cJSON *normalized = cJSON_GetObjectItemCaseSensitive(it, "normalized");
            const char *flags[] = {"lstrip", "rstrip", "single_word"};
            for (int f = 0; f < 3; f++)
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, flags[f])))
                    return ls_error("added token \"%.40s\": %s is not supported", s, flags[f]);
            added_token *a = &tok->added[tok->n_added++];
            a->content = tok->arena + tok->str_off[id];
            a->len = n;
            a->id = id;
            a->normalized = cJSON_IsTrue(normalized);
            tok->added_first_byte[(uint8_t)s[0]] = 1;
        }
    }
    return LS_OK;
}

static int load_byte_alphabet(ls_tokenizer *tok) {
    int extra = 0;
    memset(tok->byte_of_cp, 0xFF, sizeof tok->byte_of_cp);
    for (int b = 0; b < 256; b++) {
        int cp = byte_to_codepoint(b, &extra);
        char s[2];
        int n = utf8_put(cp, s);
        tok->byte_of_cp[cp] = (int16_t)b;
        tok->byte_id[b] = vocab_find(tok, s, (size_t)n);
        if (tok->byte_id[b] < 0 || tok->is_added[tok->byte_id[b]])
            return ls_error("model.vocab lacks the byte-level token of byte 0x%02x", b);
    }
    return LS_OK;
}

/* One merge is "left right" (older files) or ["left", "right"] (newer ones). */
static int merge_parts(const cJSON *m, const char **left, size_t *nl, const char **right, size_t *nr) {
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *space = strchr(s, ' ');
        if (!space || space == s || space[1] == '\0' || strchr(space + 1, ' ')) return LS_ERR;
        *left = s, *nl = (size_t)(space - s), *right = space + 1, *nr = strlen(space + 1);
        return LS_OK;
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
        cJSON_IsString(m->child->next)) {
        *left = m->child->valuestring, *nl = strlen(*left);
        *right = m->child->next->valuestring, *nr = strlen(*right);
        return LS_OK;
    }
    return LS_ERR;
}

static int load_merges(ls_tokenizer *tok, const cJSON *merges) {
    if (!cJSON_IsArray(merges)) return ls_error("model.merges is missing or not a list");
    int n = cJSON_GetArraySize(merges);
    size_t size = table_size_for((size_t)n);
    tok->merge_mask = size - 1;
    tok->merges = ls_calloc(size, sizeof(merge_slot));
    char *joined = NULL;
    size_t joined_cap = 0;
    int rank = 0, rc = LS_OK;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *l, *r;
        size_t nl, nr;
        if (merge_parts(m, &l, &nl, &r, &nr) != LS_OK) {
            rc = ls_error("model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", rank);
            break;
        }
        int32_t left = vocab_find(tok, l, nl), right = vocab_find(tok, r, nr);
        if (nl + nr + 1 > joined_cap) joined = ls_realloc(joined, joined_cap = 2 * (nl + nr + 1));
        memcpy(joined, l, nl);
        memcpy(joined + nl, r, nr);
        int32_t merged = vocab_find(tok, joined, nl + nr);
        if (left < 0 || right < 0 || merged < 0) {
            rc = ls_error("model.merges[%d] (\"%.*s\" + \"%.*s\") names a token not in the vocabulary",
                          rank, (int)(nl > 40 ? 40 : nl), l, (int)(nr > 40 ? 40 : nr), r);
            break;
        }
        uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
        size_t i = hash_u64(key) & tok->merge_mask;
        while (tok->merges[i].key != 0 && tok->merges[i].key != key) i = (i + 1) & tok->merge_mask;
        if (tok->merges[i].key == 0) /* a repeated pair keeps its first (best) rank */
            tok->merges[i] = (merge_slot){key, rank, merged};
        rank++;
    }
    free(joined);
    return rc;
}

static int load_normalizer(ls_tokenizer *tok, const cJSON *normalizer) {
    if (!normalizer || cJSON_IsNull(normalizer)) return LS_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(normalizer, "type");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "NFC")) {
        tok->nfc = 1;
        return LS_OK;
    }
    return ls_error("normalizer: only NFC or none is supported");
}

static int compile_split(ls_tokenizer *tok, const cJSON *split) {
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(split, "pattern");
    const cJSON *regex = cJSON_GetObjectItemCaseSensitive(pattern, "Regex");
    const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(split, "behavior");
    if (!cJSON_IsString(regex)) return ls_error("pre_tokenizer: Split needs a pattern.Regex string");
    if (!cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated") != 0 ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(split, "invert")))
        return ls_error("pre_tokenizer: only Split with behavior Isolated is supported");
    if (tok->split_re) return ls_error("pre_tokenizer: only one Split is supported");
    int code;
    PCRE2_SIZE offset;
    tok->split_re = pcre2_compile((PCRE2_SPTR)regex->valuestring, PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &code, &offset, NULL);
    if (!tok->split_re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return ls_error("pre_tokenizer: regex does not compile at offset %zu: %s", (size_t)offset, msg);
    }
    pcre2_jit_compile(tok->split_re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    tok->match_data = pcre2_match_data_create_from_pattern(tok->split_re, NULL);
    return LS_OK;
}

static int check_byte_level(const cJSON *bl, const char *where) {
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bl, "add_prefix_space")))
        return ls_error("%s: ByteLevel add_prefix_space is not supported", where);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bl, "use_regex")))
        return ls_error("%s: ByteLevel use_regex is not supported (give a Split)", where);
    return LS_OK;
}

static int load_pre_tokenizer(ls_tokenizer *tok, const cJSON *pre) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (!cJSON_IsString(type)) return ls_error("pre_tokenizer is missing or has no type");
    int byte_level = 0;
    const cJSON *steps = pre, *step;
    if (!strcmp(type->valuestring, "Sequence")) steps = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    if (!strcmp(type->valuestring, "Sequence") && !cJSON_IsArray(steps))
        return ls_error("pre_tokenizer: Sequence needs a pretokenizers list");
    for (step = cJSON_IsArray(steps) ? steps->child : pre; step; step = cJSON_IsArray(steps) ? step->next : NULL) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(step, "type");
        if (!cJSON_IsString(t)) return ls_error("pre_tokenizer: a step has no type");
        if (!strcmp(t->valuestring, "Split")) {
            if (byte_level) return ls_error("pre_tokenizer: Split after ByteLevel is not supported");
            if (compile_split(tok, step) != LS_OK) return LS_ERR;
        } else if (!strcmp(t->valuestring, "ByteLevel")) {
            if (check_byte_level(step, "pre_tokenizer") != LS_OK) return LS_ERR;
            byte_level = 1;
        } else {
            return ls_error("pre_tokenizer: %.40s is not supported", t->valuestring);
        }
    }
    if (!byte_level) return ls_error("pre_tokenizer: a ByteLevel step is required");
    if (!tok->split_re) return ls_error("pre_tokenizer: a Split regex is required");
    return LS_OK;
}

static int load_json(ls_tokenizer *tok, const cJSON *root) {
    if (!cJSON_IsObject(root)) return ls_error("not a JSON object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") != 0)
        return ls_error("model.type must be \"BPE\"");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")))
        return ls_error("model.byte_fallback is not supported");
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (a && !cJSON_IsNull(a) && !(cJSON_IsString(a) && a->valuestring[0] == '\0'))
            return ls_error("model.%s is not supported", affixes[i]);
    }
    const cJSON *decoder = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(decoder, "type");
    if (!cJSON_IsString(dtype) || strcmp(dtype->valuestring, "ByteLevel") != 0)
        return ls_error("decoder must be ByteLevel");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) return ls_error("added_tokens is not a list");
    if (load_vocab(tok, cJSON_GetObjectItemCaseSensitive(model, "vocab"), cJSON_IsArray(added) ? added : NULL) != LS_OK ||
        load_byte_alphabet(tok) != LS_OK ||
        load_merges(tok, cJSON_GetObjectItemCaseSensitive(model, "merges")) != LS_OK ||
        load_normalizer(tok, cJSON_GetObjectItemCaseSensitive(root, "normalizer")) != LS_OK ||
        load_pre_tokenizer(tok, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer")) != LS_OK)
        return LS_ERR;
    return LS_OK;
}

ls_tokenizer *ls_tokenizer_parse(const char *json, size_t len, const char *name) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        ls_error("%s: not valid JSON", name);
        return NULL;
    }
    ls_tokenizer *tok = ls_calloc(1, sizeof *tok);
    int rc = load_json(tok, root);
    cJSON_Delete(root);
    if (rc != LS_OK) {
        ls_error_prefix("%s", name);
        ls_tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

ls_tokenizer *ls_tokenizer_load(const char *path) {
    size_t size;
    char *text = ls_read_file(path, &size);
    if (!text) return NULL;
    ls_tokenizer *tok = ls_tokenizer_parse(text, size, path);
    free(text);
    return tok;
}

void ls_tokenizer_free(ls_tokenizer *tok) {
    if (!tok) return;
    free(tok->arena);
    free(tok->str_off);
    free(tok->str_len);
    free(tok->is_added);
    free(tok->vocab_slots);
    free(tok->merges);
    free(tok->added);
    pcre2_match_data_free(tok->match_data);
    pcre2_code_free(tok->split_re);
    free(tok);
}

int ls_tokenizer_n_ids(const ls_tokenizer *tok) { return tok->n_ids; }

int32_t ls_tokenizer_token_id(const ls_tokenizer *tok, const char *token) {
    return vocab_find(tok, token, strlen(token));
}

/* ---- encoding ---------------------------------------------------------------------------- */

static void tokens_push(ls_tokens *t, int32_t id) {
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->ids = ls_realloc(t->ids, t->cap * sizeof(int32_t));
    }
    t->ids[t->n++] = id;
}

void ls_tokens_free(ls_tokens *t) {
    free(t->ids);
    *t = (ls_tokens){0};
}

/* Scratch for BPE over one piece: symbols as a doubly linked list over an array. */
typedef struct {
    int32_t *id;
    int *prev, *next;
    size_t cap;
} bpe_scratch;

static void bpe_reserve(bpe_scratch *s, size_t n) {
    if (n <= s->cap) return;
    s->cap = n * 2;
    s->id = ls_realloc(s->id, s->cap * sizeof(int32_t));
    s->prev = ls_realloc(s->prev, s->cap * sizeof(int));
    s->next = ls_realloc(s->next, s->cap * sizeof(int));
}

static void bpe_piece(const ls_tokenizer *tok, const uint8_t *bytes, size_t n, bpe_scratch *s, ls_tokens *out) {
    if (n == 1) {
        tokens_push(out, tok->byte_id[bytes[0]]);
        return;
    }
    bpe_reserve(s, n);
    for (size_t i = 0; i < n; i++) {
        s->id[i] = tok->byte_id[bytes[i]];
        s->prev[i] = (int)i - 1;
        s->next[i] = i + 1 < n ? (int)i + 1 : -1;
    }
    /* Lowest rank first; the leftmost occurrence wins a tie. Pieces are short (words, numbers),
     * so a scan per merge beats maintaining a heap. */
    for (;;) {
        int best = -1;
        int32_t best_rank = INT32_MAX, best_merged = -1;
        for (int i = 0; s->next[i] >= 0; i = s->next[i]) { /* symbol 0 stays the head */
            const merge_slot *m = merge_find(tok, s->id[i], s->id[s->next[i]]);
            if (m && m->rank < best_rank) best = i, best_rank = m->rank, best_merged = m->merged;
        }
        if (best < 0) break;
        int gone = s->next[best];
        s->id[best] = best_merged;
        s->next[best] = s->next[gone];
        if (s->next[gone] >= 0) s->prev[s->next[gone]] = best;
    }
    for (int i = 0; i >= 0; i = s->next[i]) tokens_push(out, s->id[i]);
}

/* Split by the pre-tokenizer regex (matches and the gaps between them are pieces) and BPE each. */
static int encode_pretokenized(const ls_tokenizer *tok, const char *text, size_t len, bpe_scratch *s,
                               pcre2_match_data *md, ls_tokens *out) {
    size_t pos = 0;
    while (pos < len) {
        int rc = pcre2_match(tok->split_re, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return ls_error("pre-tokenizer regex failed (PCRE2 error %d)", rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t start = ov[0], end = ov[1];
        if (start > pos) bpe_piece(tok, (const uint8_t *)text + pos, start - pos, s, out);
        if (end == start) { /* an empty match: step over one UTF-8 character as its own piece */
            size_t step = 1;
            while (start + step < len && ((uint8_t)text[start + step] & 0xC0) == 0x80) step++;
            bpe_piece(tok, (const uint8_t *)text + start, step, s, out);
            end = start + step;
        } else {
            bpe_piece(tok, (const uint8_t *)text + start, end - start, s, out);
        }
        pos = end;
    }
    if (pos < len) bpe_piece(tok, (const uint8_t *)text + pos, len - pos, s, out);
    return LS_OK;
}

/* Find the leftmost-longest added token of the given kind at or after `from`. */
static const added_token *find_added(const ls_tokenizer *tok, const char *text, size_t len, size_t from,
                                     int normalized, size_t *at) {
    for (size_t i = from; i < len; i++) {
        if (!tok->added_first_byte[(uint8_t)text[i]]) continue;
        const added_token *best = NULL;
        for (int k = 0; k < tok->n_added; k++) {
            const added_token *a = &tok->added[k];
            if (a->normalized == normalized && a->len <= len - i && (!best || a->len > best->len) &&
                memcmp(text + i, a->content, a->len) == 0)
                best = a;
        }
        if (best) {
            *at = i;
            return best;
        }
    }
    return NULL;
}

/* Text between raw-matched added tokens: NFC, then normalized added tokens, then BPE. */
static int encode_segment(const ls_tokenizer *tok, const char *text, size_t len, bpe_scratch *s,
                          pcre2_match_data *md, ls_tokens *out) {
    if (len == 0) return LS_OK;
    utf8proc_uint8_t *norm = NULL;
    if (tok->nfc) {
        utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &norm,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (n < 0) return ls_error("text is not valid UTF-8 (%s)", utf8proc_errmsg(n));
        text = (const char *)norm;
        len = (size_t)n;
    }
    size_t pos = 0, at;
    int rc = LS_OK;
    const added_token *a;
    while (rc == LS_OK && (a = find_added(tok, text, len, pos, 1, &at)) != NULL) {
        rc = encode_pretokenized(tok, text + pos, at - pos, s, md, out);
        tokens_push(out, a->id);
        pos = at + a->len;
    }
    if (rc == LS_OK) rc = encode_pretokenized(tok, text + pos, len - pos, s, md, out);
    free(norm);
    return rc;
}

int ls_tokenizer_encode(const ls_tokenizer *tok, const char *text, size_t len, ls_tokens *out) {
    /* Validate UTF-8 up front so that PCRE2 can skip its own checks (and so no piece is split
     * inside a character). */
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n < 0) return ls_error("text is not valid UTF-8 at byte %zu", i);
        i += (size_t)n;
    }
    bpe_scratch s = {0};
    /* Match data is per call so that one tokenizer can be shared by threads. */
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(tok->split_re, NULL);
    size_t pos = 0, at;
    int rc = LS_OK;
    const added_token *a;
    while (rc == LS_OK && (a = find_added(tok, text, len, pos, 0, &at)) != NULL) {
        rc = encode_segment(tok, text + pos, at - pos, &s, md, out);
        tokens_push(out, a->id);
        pos = at + a->len;
    }
    if (rc == LS_OK) rc = encode_segment(tok, text + pos, len - pos, &s, md, out);
    pcre2_match_data_free(md);
    free(s.id);
    free(s.prev);
    free(s.next);
    return rc;
}

/* ---- decoding ---------------------------------------------------------------------------- */

char *ls_tokenizer_decode(const ls_tokenizer *tok, const int32_t *ids, size_t n, size_t *len) {
    size_t cap = 16, used = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n_ids || tok->str_off[ids[i]] == UINT32_MAX) {
            ls_error("token id %d is not in the vocabulary", ids[i]);
            return NULL;
        }
        cap += tok->str_len[ids[i]];
    }
    char *out = ls_malloc(cap);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = (const uint8_t *)tok->arena + tok->str_off[ids[i]];
        uint32_t slen = tok->str_len[ids[i]];
        if (tok->is_added[ids[i]]) {
            memcpy(out + used, s, slen);
            used += slen;
            continue;
        }
        /* Every character of a byte-level token is one byte of the alphabet (< U+0800). */
        for (uint32_t k = 0; k < slen;) {
            int cp = s[k], step = 1;
            if ((cp & 0xE0) == 0xC0 && k + 1 < slen) cp = ((cp & 0x1F) << 6) | (s[k + 1] & 0x3F), step = 2;
            int b = cp < 512 ? tok->byte_of_cp[cp] : -1;
            if (b < 0) { /* not in the alphabet: keep the raw bytes rather than lose them */
                memcpy(out + used, s + k, (size_t)step);
                used += (size_t)step;
            } else {
                out[used++] = (char)b;
            }
            k += (uint32_t)step;
        }
    }
    out[used] = '\0';
    if (len) *len = used;
    return out;
}
