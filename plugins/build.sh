#!/usr/bin/env bash
# Builds every plugin component (release, wasm32-wasip2) into plugins/dist/,
# prints each file's size and SHA-256, and checks what each component
# imports against expected-imports.txt.
#
# usage: plugins/build.sh [--update-expected]
#
#   --update-expected  rewrite expected-imports.txt from this build instead of
#                      failing when it differs (review the diff: a new import
#                      is a new capability the host will be asked for).
#
# Works from any directory. Respects CARGO_BUILD_JOBS and CARGO_TARGET_DIR;
# sets its own rustflags (see below).
set -euo pipefail

update_expected=false
case "${1:-}" in
    "") ;;
    --update-expected) update_expected=true ;;
    *) echo "usage: $0 [--update-expected]" >&2; exit 2 ;;
esac

plugins="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$plugins"
target_dir="${CARGO_TARGET_DIR:-$plugins/target}"
started=$SECONDS

# rust-toolchain.toml (in the repository root) pins the compiler and lists
# the target; adding it again is a no-op when it is installed.
rustup --quiet target add wasm32-wasip2

# Panic locations embed source paths. Remap the machine-specific ones, so
# that a component's digest (which playbooks pin and signatures cover)
# depends only on the sources, Cargo.lock and the pinned toolchain, not on
# where the repository or the cargo home lives. This replaces any RUSTFLAGS.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo"$'\x1f'"--remap-path-prefix=$plugins=/plugins"
unset RUSTFLAGS

# Every cdylib crate of the workspace is a plugin; dist/NAME.wasm drops the
# `cordon-plugin-` prefix of the crate name (which is also the plugin's NAME).
crates=()
for manifest in */Cargo.toml */*/Cargo.toml; do
    grep -q '^crate-type = \["cdylib"\]' "$manifest" || continue
    crates+=("$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n 1)")
done
if [ "${#crates[@]}" -eq 0 ]; then
    echo "no plugin crate found under $plugins" >&2
    exit 1
fi

packages=()
for crate in "${crates[@]}"; do
    packages+=(--package "$crate")
done
echo "== building ${#crates[@]} components (release, wasm32-wasip2)"
cargo build --release --locked --target wasm32-wasip2 "${packages[@]}"

rm -rf dist
mkdir dist
for crate in "${crates[@]}"; do
    cp "$target_dir/wasm32-wasip2/release/${crate//-/_}.wasm" "dist/${crate#cordon-plugin-}.wasm"
done

echo "== dist/"
(
    cd dist
    sha256sum -- *.wasm >SHA256SUMS
    while read -r sha file; do
        printf '%-34s %8d bytes  sha256 %s\n' "$file" "$(stat -c %s "$file")" "$sha"
    done <SHA256SUMS
)

# The inspect tool is native: build it for the machine's own triple.
host="$(rustc -vV | sed -n 's/^host: //p')"
echo "== imports (cordon-plugin-inspect)"
cargo run --quiet --release --locked --target "$host" --package cordon-plugin-inspect -- dist/*.wasm >dist/imports.txt
if [ "$update_expected" = true ]; then
    cp dist/imports.txt expected-imports.txt
    echo "expected-imports.txt updated"
elif ! diff -u expected-imports.txt dist/imports.txt; then
    echo "the components' imports differ from expected-imports.txt (diff above);" >&2
    echo "if the change is intended, run $0 --update-expected and commit the file" >&2
    exit 1
else
    echo "imports and exports as expected ($(wc -l <dist/imports.txt) lines)"
fi

echo "== done in $((SECONDS - started)) s"
