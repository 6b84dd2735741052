#!/usr/bin/env bash
# Builds a module of this workspace for wasm32-wasip1 (default: the policy into policy.wasm).
#   scripts/build-wasm.sh [PACKAGE OUTPUT]
#
# Panics trap at once (-Cpanic=immediate-abort): policy code has none (clippy denies them) and a
# dependency's would trap under panic = "abort" all the same, after writing its message to stderr.
# The panic machinery and every panic message leave the module (about 45 KB of 370). That
# strategy needs the std built from source (-Zbuild-std, RUSTC_BOOTSTRAP=1 on a stable compiler),
# so a compiler with its std sources, in this order:
#   rustup   the rustup toolchain, with the wasm32-wasip1 target and rust-src (added when missing
#            and rustup can download them within 60 s; a failure is remembered);
#   debian   on Debian, its rustc-web, cargo-web, rust-web-src, lld-22 and wasi-libc, installed
#            with apt when missing (shared/reference/toolchain.md);
#   prebuilt rustup's prebuilt std (the target alone): the same policy, panics as plain aborts,
#            a module about 45 KB bigger (a warning says so).
# WASM_TOOLCHAIN=rustup|debian|prebuilt forces a path. The compiler used is written to
# target/wasm/toolchain (instruction budgets are per toolchain: scripts/instructions.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-wasip1
target_dir=target/wasm
package=${1:-dittofs-s3-policy}
output=${2:-policy.wasm}
debian_packages=(rustc-web cargo-web rust-web-src lld-22 wasi-libc)
immediate_abort=(-Zunstable-options -Cpanic=immediate-abort)
# The compiler flags are given as target rustflags (`--config`), which cargo appends to
# .cargo/config.toml's: LLVM's inliner limit (speed within the size budget, explained there)
# then comes from one place for this build and a plain cargo build alike. RUSTFLAGS from the
# environment would replace both.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
rustflags() { # FLAG...: a --config value adding FLAGs to the target's rustflags
  local quoted
  quoted=$(printf '"%s",' "$@")
  echo "target.$target.rustflags=[${quoted%,}]"
}
# The std built from source takes the release profile ("z"); its own build uses 3. Counted
# (scripts/instructions.sh): alloc at 3 (allocation, growth, copies) takes 12% off an injection's
# own instructions and 30% off a DittoServer review's, for 2 KB; core, std and compiler_builtins
# stay at "s" (at 3 they would save under 3% more, for 6 KB).
std_profiles=(--config 'profile.release.package.alloc.opt-level=3')
for crate in core std compiler_builtins; do
  std_profiles+=(--config "profile.release.package.$crate.opt-level=\"s\"")
done

rustup_has() { # COMPONENT: installed for the active toolchain
  command -v rustup >/dev/null && rustup component list --installed 2>/dev/null | grep -q "^$1"
}
rustup_ready() { rustup_has "rust-std-$target" && rustup_has rust-src; }

# Adds the target and the std sources with rustup; a failed download is remembered so that
# later builds do not wait for it again.
rustup_add() {
  [[ ! -e "$target_dir/.rustup-download-failed" ]] && command -v rustup >/dev/null || return 1
  echo "Adding the $target target and rust-src with rustup (60 s at most)..." >&2
  if timeout 60 rustup target add "$target" >&2 && timeout 60 rustup component add rust-src >&2 \
    && rustup_ready; then
    return 0
  fi
  mkdir -p "$target_dir" && touch "$target_dir/.rustup-download-failed"
  return 1
}

# Debian's packages (rustc-web and the rest are Debian's names; Ubuntu has none of them).
debian_system() { [[ -r /etc/os-release ]] && (. /etc/os-release && [[ $ID == debian ]]) && command -v apt-get >/dev/null; }

choose_toolchain() {
  if [[ -n "${WASM_TOOLCHAIN:-}" ]]; then echo "$WASM_TOOLCHAIN"; return; fi
  if rustup_ready; then echo rustup; return; fi
  if rustup_add; then echo rustup; return; fi
  if debian_system; then echo debian; return; fi
  echo prebuilt
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
build=(build --locked --release -p "$package" --target "$target" --target-dir "$target_dir")
case "$toolchain" in
  rustup)
    rustc=rustc
    RUSTC_BOOTSTRAP=1 cargo "${build[@]}" -Zbuild-std=std,panic_abort \
      --config "$(rustflags "${immediate_abort[@]}")" "${std_profiles[@]}"
    ;;
  debian)
    ensure_debian_toolchain
    rustc=/usr/bin/rustc
    # Debian's rustc has no bundled rust-lld: link with lld-22's wasm-ld instead.
    RUSTC_BOOTSTRAP=1 RUSTC=$rustc /usr/bin/cargo "${build[@]}" -Zbuild-std=std,panic_abort \
      --config "$(rustflags -L native=/usr/lib/wasm32-wasi -C linker=/usr/bin/wasm-ld-22 "${immediate_abort[@]}")" \
      "${std_profiles[@]}"
    ;;
  prebuilt)
    rustc=rustc
    echo "warning: no std sources for $target (rustup's rust-src or Debian's rust-web-src): panics keep" \
      "their messages and the module is about 45 KB bigger" >&2
    cargo "${build[@]}"
    ;;
  *) echo "unknown WASM_TOOLCHAIN '$toolchain' (rustup, debian or prebuilt)" >&2; exit 2 ;;
esac
echo "$("$rustc" -V), $toolchain" >"$target_dir/toolchain"
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
echo "$output: $(stat -c %s "$output") bytes (built with $(cat "$target_dir/toolchain"))" >&2
