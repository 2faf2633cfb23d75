#!/usr/bin/env bash
# Installs what dpm's integration tests need on a Debian 12 machine, as root:
# MariaDB server + clients (mariadbd, mariadb-install-db, mariadb,
# mariadb-admin, auth_ed25519), sysbench, tmux, libmariadb-dev and a C
# compiler (to build MariaDB Connector/Python, and ring for the TLS tests), plus
# the Python client libraries PyMySQL and mariadb for the python3 on PATH, with
# PyNaCl (PyMySQL's client_ed25519) and cryptography (PyMySQL's RSA exchange for
# caching_sha2_password/sha256_password without TLS).
#
# Idempotent: does nothing when everything is already there. The tests start
# their own mariadbd on a free port; the Debian service (port 3306) is not
# used, and is kept from starting during this install when nothing else
# already decides that (policy-rc.d).
set -euo pipefail

APT_PACKAGES=(mariadb-server mariadb-client sysbench tmux
              libmariadb-dev gcc libc6-dev pkg-config)
PIP_PACKAGES=("PyMySQL>=1.1,<2" "mariadb>=1.1.10,<1.2" "PyNaCl>=1.5,<2" "cryptography>=41")
PY_MODULES="pymysql, mariadb, nacl, cryptography"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
    if ! "$@" >"$log" 2>&1; then
        echo "install-deps: FAILED: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

[ "$(id -u)" = 0 ] || { echo "install-deps: must run as root" >&2; exit 1; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: apt-get install ${missing[*]}"
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    status=0
    (run apt-get update -qq && run apt-get install -y -qq --no-install-recommends "${missing[@]}") || status=$?
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$status" = 0 ] || exit "$status"
fi

for tool in mariadbd mariadb-install-db mariadb mariadb-admin sysbench tmux mariadb_config; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] \
        || { echo "install-deps: $tool missing after install" >&2; exit 1; }
done

PY=python3
if ! "$PY" -c "import $PY_MODULES" >/dev/null 2>&1; then
    echo "install-deps: pip install ${PIP_PACKAGES[*]} (for $(command -v "$PY"))"
    run "$PY" -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}"
fi
"$PY" -c "import $PY_MODULES" || { echo "install-deps: python modules missing" >&2; exit 1; }
echo "install-deps: ok"
