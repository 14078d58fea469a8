/*
 * test_tokenizer.c: the Qwen tokenizer against the golden cases of an independent
 * implementation, round trips, error handling, and a mutation fuzz of tokenizer.json parsing.
 */
#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "lorasweep/common.h"
#include "lorasweep/tokenizer.h"
#include "testing.h"

static ls_tokenizer *qwen;

static int load_qwen(void **state) {
    (void)state;
    if (!qwen) {
        const char *path = getenv("LS_SHARED_DIR");
        char buf[4096];
        snprintf(buf, sizeof buf, "%s/qwen/tokenizer.json", path ? path : LS_SHARED_DIR);
        if (access(buf, R_OK) == 0) qwen = ls_tokenizer_load(buf);
    }
    return 0;
}

static ls_tokenizer *need_qwen(void) {
    shared_path("qwen/tokenizer.json"); /* skips or fails when missing */
    assert_non_null(qwen);
    return qwen;
}

static char *nfc(const char *s) {
    utf8proc_uint8_t *out = NULL;
    assert_true(utf8proc_map((const utf8proc_uint8_t *)s, 0, &out,
                             UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE) >= 0);
    return (char *)out;
}

static void test_golden_cases(void **state) {
    ls_tokenizer *tok = need_qwen();
    size_t n;
    char *json = ls_read_file(shared_path("golden/tokenizer_cases.json"), &n);
    assert_non_null(json);
    cJSON *cases = cJSON_Parse(json);
    assert_true(cJSON_IsArray(cases));
    assert_true(cJSON_GetArraySize(cases) >= 30);
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        const cJSON *ids = cJSON_GetObjectItem(c, "ids");
        ls_tokens got = {0};
        assert_int_equal(ls_tokenizer_encode(tok, text, strlen(text), &got), LS_OK);
        if ((int)got.n != cJSON_GetArraySize(ids)) fail_msg("token count differs for %s", text);
        for (size_t i = 0; i < got.n; i++)
            if (got.ids[i] != cJSON_GetArrayItem(ids, (int)i)->valueint)
                fail_msg("id %zu differs for %s: %d != %d", i, text, got.ids[i],
                         cJSON_GetArrayItem(ids, (int)i)->valueint);
        /* Decoding gives back the NFC-normalised text. */
        size_t len;
        char *back = ls_tokenizer_decode(tok, got.ids, got.n, &len);
        char *expect = nfc(text);
        assert_non_null(back);
        assert_string_equal(back, expect);
        assert_int_equal(len, strlen(expect));
        free(back);
        free(expect);
        ls_tokens_free(&got);
    }
    cJSON_Delete(cases);
    free(json);
}

/* Every digit is its own token, and ',', ';', '.' are single tokens: the LLMTIME premise. */
static void test_llmtime_digits(void **state) {
    ls_tokenizer *tok = need_qwen();
    const char *text = "0.123,9.876;10.500,0.000;";
    ls_tokens got = {0};
    assert_int_equal(ls_tokenizer_encode(tok, text, strlen(text), &got), LS_OK);
    assert_int_equal(got.n, strlen(text));
    for (size_t i = 0; i < got.n; i++) {
        char s[2] = {text[i], 0};
        assert_int_equal(got.ids[i], ls_tokenizer_token_id(tok, s));
    }
    assert_int_equal(ls_tokenizer_token_id(tok, "0"), 15);
    assert_int_equal(ls_tokenizer_token_id(tok, "<|endoftext|>"), 151643);
    assert_int_equal(ls_tokenizer_token_id(tok, "no such token"), -1);
    ls_tokens_free(&got);
}

/* Random UTF-8 of mixed scripts survives encode -> decode as its NFC form. */
static void test_round_trip_random(void **state) {
    ls_tokenizer *tok = need_qwen();
    static const char *atoms[] = {"a", "Z", " ", "  ", "\n", "\r\n", "\t", "7", ".", ",", ";", "'s", "'LL",
                                  "é", "e\xCC\x81", "你", "日本", "😀", "👍🏽", "\xC2\xA0", "<|im_end|>",
                                  "<|endoftext", "ß", "Ω", "\xE2\x80\x83", "--", "!!", "\\", "\"", "ـ"};
    srand(7);
    for (int trial = 0; trial < 300; trial++) {
        char text[512] = "";
        int parts = 1 + rand() % 40;
        for (int k = 0; k < parts; k++) strcat(text, atoms[rand() % (int)(sizeof atoms / sizeof *atoms)]);
        ls_tokens got = {0};
        assert_int_equal(ls_tokenizer_encode(tok, text, strlen(text), &got), LS_OK);
        for (size_t i = 0; i < got.n; i++) assert_in_range(got.ids[i], 0, ls_tokenizer_n_ids(tok) - 1);
        char *back = ls_tokenizer_decode(tok, got.ids, got.n, NULL);
        char *expect = nfc(text);
        assert_string_equal(back, expect);
        free(back);
        free(expect);
        ls_tokens_free(&got);
    }
}

static void test_bad_text_and_ids(void **state) {
    ls_tokenizer *tok = need_qwen();
    ls_tokens got = {0};
    const char bad_utf8[] = "ok \xFF\xFE then";
    assert_int_equal(ls_tokenizer_encode(tok, bad_utf8, sizeof bad_utf8 - 1, &got), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "UTF-8"));
    const char cut[] = "caf\xC3"; /* a character cut in half */
    assert_int_equal(ls_tokenizer_encode(tok, cut, sizeof cut - 1, &got), LS_ERR);
    int32_t ids[] = {15, -1};
    assert_null(ls_tokenizer_decode(tok, ids, 2, NULL));
    ids[1] = ls_tokenizer_n_ids(tok);
    assert_null(ls_tokenizer_decode(tok, ids, 2, NULL));
    assert_non_null(strstr(ls_last_error(), "not in the vocabulary"));
    /* Embedded NUL bytes are text like any other. */
    const char nul[] = "a\0b";
    assert_int_equal(ls_tokenizer_encode(tok, nul, 3, &got), LS_OK);
    size_t len;
    char *back = ls_tokenizer_decode(tok, got.ids, got.n, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(back, nul, 3);
    free(back);
    ls_tokens_free(&got);
}

/* ---- a small tokenizer.json built here, for error cases and fuzzing --------------------- */

/* GPT-2's byte -> code point table, written independently of the tokenizer's. */
static int byte_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int extra = 0;
    for (int i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) extra++;
    return 256 + extra;
}

static void put_cp(char *s, int cp) {
    if (cp < 0x80) s[0] = (char)cp, s[1] = 0;
    else s[0] = (char)(0xC0 | (cp >> 6)), s[1] = (char)(0x80 | (cp & 0x3F)), s[2] = 0;
}

/* 256 byte tokens (id = byte), then "ab" 256, "abc" 257, "Ġt" 258, "<|x|>" 259 added;
 * merges as pairs (as_pairs) or as "a b" strings. */
static char *small_tokenizer_json(int as_pairs) {
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int b = 0; b < 256; b++) {
        char s[4];
        put_cp(s, byte_cp(b));
        cJSON_AddNumberToObject(vocab, s, b);
    }
    cJSON_AddNumberToObject(vocab, "ab", 256);
    cJSON_AddNumberToObject(vocab, "abc", 257);
    cJSON_AddNumberToObject(vocab, "\xC4\xA0t", 258);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    const char *pairs[][2] = {{"a", "b"}, {"ab", "c"}, {"\xC4\xA0", "t"}};
    for (int i = 0; i < 3; i++) {
        if (as_pairs) {
            cJSON *p = cJSON_CreateArray();
            cJSON_AddItemToArray(p, cJSON_CreateString(pairs[i][0]));
            cJSON_AddItemToArray(p, cJSON_CreateString(pairs[i][1]));
            cJSON_AddItemToArray(merges, p);
        } else {
            char s[16];
            snprintf(s, sizeof s, "%s %s", pairs[i][0], pairs[i][1]);
            cJSON_AddItemToArray(merges, cJSON_CreateString(s));
        }
    }
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens"), *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", 259);
    cJSON_AddStringToObject(a, "content", "<|x|>");
    cJSON_AddBoolToObject(a, "special", 1);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddItemToArray(added, a);
    cJSON_AddItemToObject(root, "normalizer", cJSON_Parse("{\"type\":\"NFC\"}"));
    cJSON_AddItemToObject(root, "pre_tokenizer",
                          cJSON_Parse("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
                                      "{\"Regex\":\"(?i:'s|'t)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}|"
                                      " ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s+(?!\\\\S)|\\\\s+\"},"
                                      "\"behavior\":\"Isolated\",\"invert\":false},"
                                      "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]}"));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse("{\"type\":\"ByteLevel\"}"));
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return json;
}

static void test_small_tokenizer(void **state) {
    for (int as_pairs = 0; as_pairs < 2; as_pairs++) {
        char *json = small_tokenizer_json(as_pairs);
        ls_tokenizer *tok = ls_tokenizer_parse(json, strlen(json), "small.json");
        if (!tok) fail_msg("%s", ls_last_error());
        const char *text = "abc ab<|x|> t";
        ls_tokens got = {0};
        assert_int_equal(ls_tokenizer_encode(tok, text, strlen(text), &got), LS_OK);
        /* pieces "abc" | " ab" | <|x|> | " t": abc; Ġ (byte 32) + ab; the added token; Ġt */
        int32_t expect[] = {257, 32, 256, 259, 258};
        assert_int_equal(got.n, 5);
        assert_memory_equal(got.ids, expect, sizeof expect);
        ls_tokens_free(&got);
        ls_tokenizer_free(tok);
        free(json);
    }
}

/* Each broken file gives NULL and a one-line message naming the file. */
static void test_broken_files(void **state) {
    assert_null(ls_tokenizer_load("/nonexistent/tokenizer.json"));
    assert_non_null(strstr(ls_last_error(), "/nonexistent/tokenizer.json"));
    char *good = small_tokenizer_json(1);
    struct {
        const char *from, *to, *message;
    } cases[] = {
        {"\"type\":\"BPE\"", "\"type\":\"WordPiece\"", "model.type"},
        {"\"vocab\":", "\"vocabulary\":", "model.vocab"},
        {"\"merges\":[[\"a\",\"b\"]", "\"merges\":[[\"a\",\"q\"]", "merges[0]"},
        {"\"merges\":[[\"a\",\"b\"]", "\"merges\":[[\"a\"]", "merges[0]"},
        {"\"a\":97", "\"a\":-3", "model.vocab"},
        {"\"a\":97", "\"a\":98", "two different tokens"},
        {"\"a\":97", "\"a\":1e30", "model.vocab"},
        {"\"NFC\"", "\"NFKD\"", "normalizer"},
        {"\"Isolated\"", "\"Removed\"", "Isolated"},
        {"\"Regex\":\"(?i:", "\"Regex\":\"((?i:", "regex"},
        {"\"content\":\"<|x|>\"", "\"content\":\"\"", "added_tokens"},
        {"{\"type\":\"ByteLevel\"}", "{\"type\":\"WordPiece\"}", "decoder"},
        {"\"use_regex\":false", "\"use_regex\":true", "use_regex"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *at = strstr(good, cases[i].from);
        if (!at) fail_msg("fixture lacks %s", cases[i].from);
        size_t n = strlen(good) + strlen(cases[i].to) + 1;
        char *bad = malloc(n);
        snprintf(bad, n, "%.*s%s%s", (int)(at - good), good, cases[i].to, at + strlen(cases[i].from));
        assert_null(ls_tokenizer_parse(bad, strlen(bad), "bad.json"));
        const char *msg = ls_last_error();
        if (strncmp(msg, "bad.json: ", 10) != 0 || !strstr(msg, cases[i].message) || strchr(msg, '\n'))
            fail_msg("case %zu: unexpected message '%s'", i, msg);
        free(bad);
    }
    assert_null(ls_tokenizer_parse("{\"model\":", 9, "cut.json"));
    assert_string_equal(ls_last_error(), "cut.json: not valid JSON");
    assert_null(ls_tokenizer_parse("[]", 2, "list.json"));
    free(good);
}

/* Mutation fuzz: random damage to a valid file never crashes or reads out of bounds (run this
 * under the sanitizer build); a file that still loads must still tokenize. */
static void test_fuzz_mutations(void **state) {
    char *good = small_tokenizer_json(1);
    size_t n = strlen(good);
    unsigned seed = 12345;
    int loaded = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t len;
        char *exact = mutated_copy(good, n, "{}[]\",:0123456789e\\", &seed, &len);
        ls_tokenizer *tok = ls_tokenizer_parse(exact, len, "fuzz.json");
        if (tok) {
            loaded++;
            ls_tokens got = {0};
            const char *text = "abc t's <|x|> 12;";
            if (ls_tokenizer_encode(tok, text, strlen(text), &got) == LS_OK) {
                char *back = ls_tokenizer_decode(tok, got.ids, got.n, NULL);
                free(back);
            }
            ls_tokens_free(&got);
            ls_tokenizer_free(tok);
        } else {
            assert_true(strlen(ls_last_error()) > 0);
        }
        free(exact);
    }
    print_message("fuzz: %d of 3000 mutated files still loaded\n", loaded);
    free(good);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),     cmocka_unit_test(test_llmtime_digits),
        cmocka_unit_test(test_round_trip_random), cmocka_unit_test(test_bad_text_and_ids),
        cmocka_unit_test(test_small_tokenizer),  cmocka_unit_test(test_broken_files),
        cmocka_unit_test(test_fuzz_mutations),
    };
    int failed = cmocka_run_group_tests(tests, load_qwen, NULL);
    ls_tokenizer_free(qwen);
    return test_exit_status(failed);
}
