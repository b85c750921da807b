#!/usr/bin/env bash
# Installs the official Whop SDKs used by the SDK driver scripts in this directory:
#   ts/         npm @whop/sdk (exact version pinned in ts/package.json + package-lock.json)
#   py/         PyPI whop-sdk 2.6.0 in py/.venv
#   py-legacy/  PyPI whop-sdk 0.0.41 in py-legacy/.venv
# Idempotent: re-running skips what is already installed at the pinned versions.
# Environment: PYTHON (default python3), NPM (default npm).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
NPM="${NPM:-npm}"

log() { echo "[sdk-install] $*"; }

# --- TypeScript -------------------------------------------------------------
ts_dir="$here/ts"
want_ts="$(node -e 'console.log(require(process.argv[1]).dependencies["@whop/sdk"])' "$ts_dir/package.json")"
have_ts=""
if [ -f "$ts_dir/node_modules/@whop/sdk/package.json" ]; then
  have_ts="$(node -e 'console.log(require(process.argv[1]).version)' "$ts_dir/node_modules/@whop/sdk/package.json")"
fi
if [ "$have_ts" = "$want_ts" ] && [ -f "$ts_dir/node_modules/.package-lock.json" ] \
   && [ ! "$ts_dir/package-lock.json" -nt "$ts_dir/node_modules/.package-lock.json" ]; then
  log "ts: @whop/sdk $have_ts already installed in $ts_dir/node_modules"
else
  log "ts: npm ci in $ts_dir (want @whop/sdk $want_ts, have '${have_ts:-none}')"
  (cd "$ts_dir" && "$NPM" ci --no-audit --no-fund)
  have_ts="$(node -e 'console.log(require(process.argv[1]).version)' "$ts_dir/node_modules/@whop/sdk/package.json")"
  [ "$have_ts" = "$want_ts" ] || { log "ts: installed @whop/sdk $have_ts, wanted $want_ts"; exit 1; }
  log "ts: installed @whop/sdk $have_ts"
fi

# --- Python -------------------------------------------------------------------
install_venv() {
  local dir="$1"
  local venv="$dir/.venv"
  local req="$dir/requirements.txt"
  local want
  want="$(sed -n 's/^whop-sdk==\([^[:space:]]*\).*/\1/p' "$req")"
  if [ ! -x "$venv/bin/python" ]; then
    log "py: creating venv $venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$venv"
  fi
  local have
  have="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("whop-sdk"))' 2>/dev/null || true)"
  if [ "$have" = "$want" ] && "$venv/bin/python" -c 'import whop_sdk' 2>/dev/null; then
    log "py: whop-sdk $have already installed in $venv"
  else
    log "py: pip install -r $req into $venv (want whop-sdk $want, have '${have:-none}')"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
    have="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("whop-sdk"))')"
    [ "$have" = "$want" ] || { log "py: installed whop-sdk $have, wanted $want"; exit 1; }
    log "py: installed whop-sdk $have in $venv"
  fi
}

install_venv "$here/py"
install_venv "$here/py-legacy"

log "done"
