#!/usr/bin/env bash
# cli_tokenize.sh LORASWEEP SHARED_DIR: `lorasweep tokenize` end to end, and its errors.
set -uo pipefail
LS=$1; SHARED=$2
TOK=$SHARED/qwen/tokenizer.json
fails=0; passes=0
if [ ! -f "$TOK" ]; then
  [ "${LS_REQUIRE_SHARED:-0}" = 1 ] && { echo "FAIL: $TOK missing"; exit 1; }
  echo "skipped: $TOK missing"; exit 0
fi
T=$(mktemp -d)

check() { # check NAME EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then echo "ok   $1"; passes=$((passes + 1)); else echo "FAIL $1: expected [$2] got [$3]"; fails=$((fails + 1)); fi
}
# expect_error NAME STDIN ARGS...: non-zero exit below 128, exactly one stderr line "lorasweep..."
expect_error() {
  local name=$1 input=$2; shift 2
  printf '%s' "$input" | "$LS" tokenize "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" = 1 ] && grep -q '^lorasweep' "$T/err"; then
    echo "ok   $name: $(cat "$T/err")"; passes=$((passes + 1))
  else
    echo "FAIL $name: rc=$rc, stderr:"; cat "$T/err"; fails=$((fails + 1))
  fi
}

check "encode LLMTIME" "[16,13,24,15,15,11,17,13,15,23,16,26]" \
  "$(printf '1.900,2.081;' | "$LS" tokenize --tokenizer "$TOK")"
check "decode" "1.900,2.081;" "$(echo '[16,13,24,15,15,11,17,13,15,23,16,26]' | "$LS" tokenize --tokenizer "$TOK" --decode)"
check "jsonl encode" $'[9707,1879,0]\n[151644,872]' \
  "$(printf '"Hello world!"\n"<|im_start|>user"\n' | "$LS" tokenize --tokenizer "$TOK" --jsonl)"
check "jsonl decode" $'"Hello world!"\n"a\\nb"' \
  "$(printf '[9707,1879,0]\n[64,198,65]\n' | "$LS" tokenize --tokenizer "$TOK" --jsonl --decode)"
# Every golden case through the command line, as JSON lines.
/usr/bin/python3 - "$SHARED/golden/tokenizer_cases.json" "$T/cases.jsonl" "$T/ids.jsonl" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f, open(sys.argv[3], "w") as g:
    for c in cases:
        if c["text"] == "": continue  # a blank line is skipped by --jsonl
        f.write(json.dumps(c["text"]) + "\n"); g.write(json.dumps(c["ids"]).replace(" ", "") + "\n")
PY
"$LS" tokenize --tokenizer "$TOK" --jsonl <"$T/cases.jsonl" >"$T/got.jsonl"
check "golden cases via --jsonl" "same" "$(cmp -s "$T/got.jsonl" "$T/ids.jsonl" && echo same || echo differ)"
check "--help" "0" "$("$LS" tokenize --help >/dev/null; echo $?)"

expect_error "missing --tokenizer" "x"
expect_error "missing tokenizer file" "x" --tokenizer "$T/none.json"
echo '{"model": {"type": "BPE"' >"$T/broken.json"
expect_error "broken tokenizer.json" "x" --tokenizer "$T/broken.json"
echo '{"model": {"type": "Unigram"}}' >"$T/unigram.json"
expect_error "unsupported model" "x" --tokenizer "$T/unigram.json"
expect_error "unknown option" "x" --tokenizer "$TOK" --frobnicate
expect_error "invalid UTF-8" $'\xff\xfe' --tokenizer "$TOK"
expect_error "decode non-array" "hello" --tokenizer "$TOK" --decode
expect_error "decode bad id" "[1,99999999]" --tokenizer "$TOK" --decode
expect_error "jsonl not a string" $'"ok"\n42\n' --tokenizer "$TOK" --jsonl
expect_error "stray argument" "x" --tokenizer "$TOK" extra

rm -rf "$T"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
