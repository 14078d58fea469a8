#!/usr/bin/env bash
# cli_model.sh LORASWEEP SHARED_DIR: `lorasweep model init` and `lorasweep model info` end to end,
# and their errors: each a non-zero exit below 128 with exactly one stderr line "lorasweep...".
source "$(dirname "$0")/cli_lib.sh"
GOLDEN=$SHARED/golden/qwen2-tiny
TOK=$SHARED/qwen/tokenizer.json

# init + info
out=$("$LS" model init --preset tiny --out "$T/tiny" --seed 3 2>"$T/err"); rc=$?
check "init exit status" "0" "$rc"
check "init is quiet on stderr" "" "$(cat "$T/err")"
contains "init summary" "9810496 parameters" "$out"
check "init files" "config.json model.safetensors" "$(cd "$T/tiny" && echo *)"
info=$("$LS" model info "$T/tiny"); rc=$?
check "info exit status" "0" "$rc"
contains "info total" '"total":	9810496' "$info"
contains "info layers" '"num_hidden_layers":	2' "$info"
contains "info finite" '"non_finite_weights":	0' "$info"
if [ -x /usr/bin/python3 ]; then
  check "info parses as JSON" "9810496 16 True" "$(echo "$info" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["parameters"]["total"], d["config"]["head_dim"], d["config"]["tie_word_embeddings"])')"
  # the file is a safetensors file another reader accepts: header padded, offsets contiguous
  check "init file read by Python" "ok" "$(/usr/bin/python3 - "$T/tiny/model.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
assert (8 + n) % 8 == 0 and h.pop("__metadata__") == {"format": "pt"}
end = 0
for k, v in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"]):
    s, e = v["data_offsets"]; assert s == end and v["dtype"] == "BF16"; end = e
assert 8 + n + end == len(b) and "model.embed_tokens.weight" in h and "lm_head.weight" not in h
print("ok")
PY
)"
fi
"$LS" model init --preset tiny --out "$T/tiny2" --seed 3 >/dev/null
check "same seed, same bytes" "same" "$(cmp -s "$T/tiny/model.safetensors" "$T/tiny2/model.safetensors" && echo same || echo differ)"
"$LS" model init --preset tiny --out "$T/tiny3" --seed 4 >/dev/null
check "other seed, other bytes" "differ" "$(cmp -s "$T/tiny/model.safetensors" "$T/tiny3/model.safetensors" && echo same || echo differ)"
check "model --help" "0" "$("$LS" model --help >/dev/null; echo $?)"
check "init --help" "0" "$("$LS" model init --help >/dev/null; echo $?)"
check "info --help" "0" "$("$LS" model info --help >/dev/null; echo $?)"
contains "init --help names the presets" "qwen2.5-0.5b" "$("$LS" model init --help)"

if [ -f "$GOLDEN/model.safetensors" ] && [ -f "$TOK" ]; then
  contains "info on the golden checkpoint" '"total":	9810496' "$("$LS" model info "$GOLDEN")"
  "$LS" model init --preset tiny --out "$T/withtok" --tokenizer "$TOK" >/dev/null
  check "tokenizer copied" "same" "$(cmp -s "$TOK" "$T/withtok/tokenizer.json" && echo same || echo differ)"
else
  skip_part "the golden checkpoint checks ($GOLDEN or $TOK missing)"
fi

# errors
mkdir -p "$T/empty" "$T/badcfg" "$T/cut"
echo '{"model_type": "qwen2", "hidden_size": 64' >"$T/badcfg/config.json"
cp "$T/tiny/config.json" "$T/cut/"
cp "$T/tiny/config.json" "$T/empty/"
head -c 5000 "$T/tiny/model.safetensors" >"$T/cut/model.safetensors"
echo "not a file" >"$T/afile"
echo '{}' >"$T/notatokenizer.json"
expect_error "init missing --preset" model init --out "$T/x"
expect_error "init missing --out" model init --preset tiny
expect_error "init unknown preset" model init --preset huge --out "$T/x"
expect_error "init --seed abc" model init --preset tiny --out "$T/x" --seed abc
expect_error "init --seed -1" model init --preset tiny --out "$T/x" --seed -1
expect_error "init --out without value" model init --preset tiny --out
expect_error "init unknown option" model init --preset tiny --out "$T/x" --frobnicate
expect_error "init stray argument" model init --preset tiny --out "$T/x" extra
expect_error "init onto a file" model init --preset tiny --out "$T/afile"
expect_error "init missing tokenizer" model init --preset tiny --out "$T/x" --tokenizer "$T/none.json"
expect_error "init bad tokenizer" model init --preset tiny --out "$T/x" --tokenizer "$T/notatokenizer.json"
# a failed init leaves nothing it created: neither the directory nor its new parents
EXPECT_RC=1 EXPECT_PATTERN="^lorasweep: --tokenizer: .*notatokenizer.json" \
  expect_error "init bad tokenizer, new parents" model init --preset tiny --out "$T/new/parents/m" --tokenizer "$T/notatokenizer.json"
check "a bad tokenizer leaves no directory" "no x, no new" "$([ -e "$T/x" ] && echo x || echo no x), $([ -e "$T/new" ] && echo new || echo no new)"
mkdir -p "$T/kept" && echo mine >"$T/kept/notes.txt"
expect_error "init bad tokenizer into an existing directory" model init --preset tiny --out "$T/kept" --tokenizer "$T/notatokenizer.json"
check "an existing directory keeps what it held, nothing added" "notes.txt" "$(cd "$T/kept" && echo *)"
expect_error "info no directory" model info
expect_error "info two directories" model info "$T/tiny" "$T/tiny2"
expect_error "info missing directory" model info "$T/none"
expect_error "info on a file" model info "$T/afile"
expect_error "info no weights" model info "$T/empty"
expect_error "info broken config" model info "$T/badcfg"
expect_error "info truncated weights" model info "$T/cut"
expect_error "info unknown option" model info --frobnicate "$T/tiny"
expect_error "unknown model command" model frobnicate
check "no temporary files left" "config.json model.safetensors" "$(cd "$T/tiny" && echo *)"

finish
