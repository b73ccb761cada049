#!/usr/bin/env bash
# Installs FerretDB (MongoDB wire protocol on an embedded SQLite backend) into $TWIN_HOME/bin.
#
# Idempotent and quiet: prints nothing when the right version is already there.
# Needs a Go toolchain and the Go module proxy.
#
# Why not a plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: that builds, but the
# binary panics at start-up ("Invalid build/version/version.txt file content"), because FerretDB embeds
# build/version/version.txt, a file its release tooling generates and the module zip does not contain.
# So this script builds the same module version from a writable copy of its source with that one file
# written, as FerretDB's own docs for that panic say (https://pkg.go.dev/github.com/FerretDB/FerretDB/build/version).
set -euo pipefail

FERRETDB_VERSION=v1.24.2
FERRETDB_MODULE=github.com/FerretDB/FerretDB

TWIN_HOME=${TWIN_HOME:-$HOME/.cache/llm-twin}
BIN_DIR=$TWIN_HOME/bin
TARGET=$BIN_DIR/ferretdb

die() { echo "install-ferretdb: $*" >&2; exit 1; }

# (Output is captured before matching: `grep -q` closing the pipe early would fail the pipeline under pipefail.)
is_right_version() {
  local out
  [ -x "$1" ] && out=$("$1" --version 2>/dev/null) && grep -qx "version: $FERRETDB_VERSION" <<<"$out"
}

is_right_version "$TARGET" && exit 0

mkdir -p "$BIN_DIR" || die "cannot create $BIN_DIR"
exec 9>"$TWIN_HOME/.install-ferretdb.lock"
flock 9
is_right_version "$TARGET" && exit 0

command -v go >/dev/null 2>&1 || die "Go toolchain not found on PATH; install Go >= 1.22 (https://go.dev/doc/install) and rerun"

log=$TWIN_HOME/install-ferretdb.log
echo "install-ferretdb: building FerretDB $FERRETDB_VERSION with Go (a cold build takes a few minutes)..."
start=$(date +%s)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# `set -e` does not apply inside a function called as `build || ...`, so every step checks itself.
build() {
  local src
  src=$(go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || return 1
  [ -n "$src" ] && [ -d "$src" ] || { echo "go mod download gave no source directory"; return 1; }
  cp -R "$src/." "$work/src" || return 1
  chmod -R u+w "$work/src" || return 1
  echo "$FERRETDB_VERSION" >"$work/src/build/version/version.txt" || return 1
  echo "llm-twin-go-build" >"$work/src/build/version/package.txt" || return 1
  (cd "$work/src" && go build -buildvcs=false -o "$TARGET.tmp" ./cmd/ferretdb) || return 1
  mv "$TARGET.tmp" "$TARGET"
}
build >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "building FerretDB $FERRETDB_VERSION failed (full log: $log)"; }

is_right_version "$TARGET" || die "built $TARGET but '$TARGET --version' does not say $FERRETDB_VERSION: $("$TARGET" --version 2>&1 | head -n 3)"
echo "install-ferretdb: installed $TARGET (FerretDB $FERRETDB_VERSION) in $(( $(date +%s) - start ))s"
