#!/usr/bin/env bash
# Real session stacks against a running three-region demo (`cargo run --release -- demo` in
# another terminal: regions on 127.0.0.1:6401..6403), as their users would point them at it.
# Not part of .ci/run: it installs Python packages from PyPI into a virtual environment.
#
#   stacks/run.sh            # Django's RedisCache + cache sessions, Litestar's RedisStore,
#                            # and phpredis's locking session handler when `php` has the redis
#                            # extension (Debian: apt-get install php-cli php-redis)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${VENV:-$here/.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q 'django>=5' 'redis>=5' 'litestar>=2'
"$venv/bin/python" "$here/django_cache.py"
"$venv/bin/python" "$here/litestar_store.py"

if command -v php >/dev/null && php -m | grep -qx redis; then
    id="stacks$$"
    for port in 6401 6402 6403 6401; do
        got=$(php "$here/phpredis_session.php" "$id" "$port")
        echo "phpredis via $port: $got"
        sleep 0.2   # the next request goes to another region: let the write replicate
    done
    [ "$got" = '{"n":4,"last_port":"6401"}' ] || { echo "FAILED: phpredis counted $got"; exit 1; }
    for port in 6401 6402 6403; do
        left=$(redis-cli -p "$port" -n 2 exists "PHPREDIS_SESSION:${id}_LOCK")
        [ "$left" = 0 ] || { echo "FAILED: a session lock is left on $port"; exit 1; }
    done
    echo "phpredis: locking session handler across three regions, locks released: OK"
else
    echo "phpredis: skipped (no php with the redis extension)"
fi
