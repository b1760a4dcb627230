#!/usr/bin/env bash
# Installs everything Farthing needs into this checkout, and nothing outside it:
#   .venv/          Python packages, pinned by pyproject.toml and requirements.lock
#   node_modules/   anvil, solc-js, OpenZeppelin and ethers (a test reference), pinned by
#                   package-lock.json
# Idempotent and quick when nothing changed (a stamp file records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || die "python3 not found: install Python 3.11 or newer"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "Python 3.11 or newer is needed ($("$PY" --version) found); set PYTHON=/path/to/python3.11"
command -v node >/dev/null || die "node not found: install Node.js 20 or newer"
command -v npm >/dev/null || die "npm not found: install npm (it comes with Node.js)"

stamp() { cat "$@" | sha256sum | cut -c1-16; }

# npm: exactly what package-lock.json says. --ignore-scripts: anvil's binary comes in its
# per-platform package; its postinstall script would only try a download we do not need.
npm_stamp=$(stamp package.json package-lock.json)
if [ ! -f node_modules/.farthing-stamp ] || [ "$(cat node_modules/.farthing-stamp)" != "$npm_stamp" ]; then
  echo "setup: installing the node toolchain (npm ci)..." >&2
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  echo "$npm_stamp" > node_modules/.farthing-stamp
fi

py_stamp=$(stamp pyproject.toml requirements.lock)
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.farthing-stamp ] || [ "$(cat .venv/.farthing-stamp)" != "$py_stamp" ]; then
  echo "setup: installing Python packages into .venv..." >&2
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # compat mode puts the checkout itself on sys.path, so packages added later import too.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock \
    --config-settings editable_mode=compat -e '.[dev]' >&2
  echo "$py_stamp" > .venv/.farthing-stamp
fi
