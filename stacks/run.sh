#!/usr/bin/env bash
# Real session stacks against a running three-region demo (`cargo run --release -- demo` in
# another terminal: regions on 127.0.0.1:6401..6403), as their users would point them at it.
# Not part of .ci/run: it installs Python packages from PyPI into a virtual environment.
#
#   stacks/run.sh            # Django's RedisCache + cache sessions, Litestar's RedisStore
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${VENV:-$here/.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q 'django>=5' 'redis>=5' 'litestar>=2'
"$venv/bin/python" "$here/django_cache.py"
"$venv/bin/python" "$here/litestar_store.py"
