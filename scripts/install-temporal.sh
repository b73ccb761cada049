#!/usr/bin/env bash
# Installs the Temporal CLI (dev server with embedded Temporal Server + Web UI) into $TWIN_HOME/bin.
#
# Idempotent and quiet: prints nothing when the right version is already there.
# Needs a Go toolchain (>= 1.25, or Go's automatic toolchain download through the module proxy)
# and the Go module proxy. A cold build takes minutes on 2 cores (see docs/services.md).
#
# v1.5.1 is the newest tag of github.com/temporalio/cli whose go.mod has no `replace` directive,
# i.e. the newest one `go install ...@version` can build. It embeds Temporal Server 1.29.1 and UI 2.42.1.
set -euo pipefail

TEMPORAL_CLI_VERSION=v1.5.1
TEMPORAL_CLI_MODULE=github.com/temporalio/cli
EXPECTED_VERSION_LINE='Server 1.29.1, UI 2.42.1'

TWIN_HOME=${TWIN_HOME:-$HOME/.cache/llm-twin}
BIN_DIR=$TWIN_HOME/bin
TARGET=$BIN_DIR/temporal

die() { echo "install-temporal: $*" >&2; exit 1; }

# A `go install`ed CLI reports "temporal version 0.0.0-DEV (Server 1.29.1, UI 2.42.1)", so the CLI's own
# version is read from the module info Go embeds in the binary when a Go toolchain is present.
is_right_version() {
  local bin=$1 out
  [ -x "$bin" ] || return 1
  # (Output is captured before matching: `grep -q` closing the pipe early would fail the pipeline under pipefail.)
  out=$("$bin" --version 2>/dev/null) || return 1
  grep -qF "$EXPECTED_VERSION_LINE" <<<"$out" || return 1
  if command -v go >/dev/null 2>&1; then
    out=$(go version -m "$bin" 2>/dev/null) || return 1
    awk -v m="$TEMPORAL_CLI_MODULE" -v v="$TEMPORAL_CLI_VERSION" \
      '$1 == "mod" && $2 == m && $3 == v { ok = 1 } END { exit ok ? 0 : 1 }' <<<"$out" || return 1
  fi
  return 0
}

is_right_version "$TARGET" && exit 0

mkdir -p "$BIN_DIR" || die "cannot create $BIN_DIR"
exec 9>"$TWIN_HOME/.install-temporal.lock"
flock 9
# Another run may have finished the install while this one waited for the lock.
is_right_version "$TARGET" && exit 0

command -v go >/dev/null 2>&1 || die "Go toolchain not found on PATH; install Go >= 1.25 (https://go.dev/doc/install) and rerun"

# Reuse a binary that a plain `go install` of the same version already built (saves minutes of build).
for candidate in "$(go env GOBIN)/temporal" "$(go env GOPATH)/bin/temporal"; do
  if [ "$candidate" != "/temporal" ] && is_right_version "$candidate"; then
    cp "$candidate" "$TARGET.tmp" && mv "$TARGET.tmp" "$TARGET"
    echo "install-temporal: copied temporal CLI $TEMPORAL_CLI_VERSION from $candidate to $TARGET"
    exit 0
  fi
done

log=$TWIN_HOME/install-temporal.log
echo "install-temporal: building temporal CLI $TEMPORAL_CLI_VERSION with Go (a cold build takes several minutes)..."
start=$(date +%s)
if ! GOBIN=$BIN_DIR go install "$TEMPORAL_CLI_MODULE/cmd/temporal@$TEMPORAL_CLI_VERSION" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "go install $TEMPORAL_CLI_MODULE/cmd/temporal@$TEMPORAL_CLI_VERSION failed (full log: $log)"
fi
is_right_version "$TARGET" || die "built $TARGET but it does not report '$EXPECTED_VERSION_LINE' ($("$TARGET" --version 2>&1 | head -n 1))"
echo "install-temporal: installed $TARGET ($("$TARGET" --version)) in $(( $(date +%s) - start ))s"
