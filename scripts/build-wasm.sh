#!/usr/bin/env bash
# Builds a module of this workspace for wasm32-wasip1 (default: the policy into policy.wasm).
#   scripts/build-wasm.sh [PACKAGE OUTPUT]
#
# Uses the rustup target when it is installed or can be added. Otherwise (machines whose
# rustup cannot download targets) it installs Debian's rustc/cargo with the std sources and
# builds the std for wasm32-wasip1 from source (-Zbuild-std), the recipe in
# shared/reference/toolchain.md. WASM_TOOLCHAIN=rustup|debian forces a path.
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-wasip1
target_dir=target/wasm
package=${1:-dittofs-s3-policy}
output=${2:-policy.wasm}
debian_packages=(rustc-web cargo-web rust-web-src lld-22 wasi-libc)

rustup_has_target() {
  command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx "$target"
}

choose_toolchain() {
  if [[ -n "${WASM_TOOLCHAIN:-}" ]]; then echo "$WASM_TOOLCHAIN"; return; fi
  if rustup_has_target; then echo rustup; return; fi
  # Remember a failed download so later builds do not wait for it again.
  if [[ ! -e "$target_dir/.rustup-target-unavailable" ]] && command -v rustup >/dev/null; then
    echo "Adding the $target target with rustup (60 s at most)..." >&2
    if timeout 60 rustup target add "$target" >&2 && rustup_has_target; then echo rustup; return; fi
    mkdir -p "$target_dir" && touch "$target_dir/.rustup-target-unavailable"
  fi
  echo debian
}

ensure_debian_toolchain() {
  local missing=() debian_package
  for debian_package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$debian_package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$debian_package")
  done
  ((${#missing[@]} == 0)) && return
  echo "Installing Debian's Rust toolchain for $target: ${missing[*]}" >&2
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

toolchain=$(choose_toolchain)
case "$toolchain" in
  rustup)
    cargo build --locked --release -p "$package" --target "$target" --target-dir "$target_dir"
    ;;
  debian)
    ensure_debian_toolchain
    # Debian's rustc has no bundled rust-lld: link with lld-22's wasm-ld instead.
    RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc \
      RUSTFLAGS="-L native=/usr/lib/wasm32-wasi -C linker=/usr/bin/wasm-ld-22" \
      /usr/bin/cargo build --locked --release -p "$package" --target "$target" \
      --target-dir "$target_dir" -Zbuild-std=std,panic_abort
    ;;
  *) echo "unknown WASM_TOOLCHAIN '$toolchain' (rustup or debian)" >&2; exit 2 ;;
esac
built="$target_dir/$target/release/${package//-/_}.wasm"
# Binaryen's size optimiser takes about a fifth off what rustc leaves (smaller modules also
# instantiate faster, and policy-server instantiates one per request). Only features every
# Kubewarden runtime supports are enabled. WASM_OPT=0 skips it.
if [[ ${WASM_OPT:-1} != 0 ]]; then
  scripts/ensure-tools.sh wasm-opt:binaryen
  wasm-opt -Oz --strip-debug --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int "$built" -o "$output"
else
  cp "$built" "$output"
fi
echo "$output: $(stat -c %s "$output") bytes (built with the $toolchain toolchain)" >&2
