#!/usr/bin/env bash
# Installs what dpm's integration tests need on a Debian 12 machine, as root:
# MariaDB server + clients (mariadbd, mariadb-install-db, mariadb,
# mariadb-admin, auth_ed25519), sysbench, tmux, libmariadb-dev and a C
# compiler (to build MariaDB Connector/Python, and ring for the TLS tests), plus
# the Python client libraries PyMySQL and mariadb for the python3 on PATH, with
# PyNaCl (PyMySQL's client_ed25519) and cryptography (PyMySQL's RSA exchange for
# caching_sha2_password/sha256_password without TLS), and pytest; then PyMySQL's own
# test suite for crates/dpm/tests/it/suites.rs: the sdist of PyMySQL 0.10.1 (the newest
# on PyPI that carries pymysql/tests), downloaded with pip, its SHA-256 checked, and
# extracted into $DPM_SUITES_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/dpm-suites);
# and MariaDB's own regression tests for crates/dpm/tests/it/mtr.rs: Debian's
# mariadb-test (the mariadb-test client; mariadb-test-run.pl and the suites under
# /usr/share/mysql/mysql-test), the same version as mariadb-server; Chromium (the status
# page's test loads it headless) and curl (the admin API's tests); for the Debian
# package's test (crates/dpm/tests/it/operations.rs): cargo-deb (pinned, from crates.io),
# dpkg-dev (its dependency detection) and systemd (systemd-analyze, to check the unit; no
# systemd is started).
#
# Idempotent: does nothing when everything is already there. The tests start
# their own mariadbd on a free port; the Debian service (port 3306) is not
# used, and is kept from starting during this install when nothing else
# already decides that (policy-rc.d).
set -euo pipefail

APT_PACKAGES=(mariadb-server mariadb-client mariadb-test sysbench tmux openssl curl chromium
              dpkg-dev systemd libmariadb-dev gcc libc6-dev pkg-config)
CARGO_DEB_VERSION=3.8.0
PIP_PACKAGES=("PyMySQL>=1.1,<2" "mariadb>=1.1.10,<1.2" "PyNaCl>=1.5,<2" "cryptography>=41"
              "pytest>=8,<9")
PY_MODULES="pymysql, mariadb, nacl, cryptography, pytest"
# Keep in step with PYMYSQL and PYMYSQL_SDIST_SHA256 in crates/dpm/tests/it/suites.rs.
SUITE_PYMYSQL=0.10.1
SUITE_PYMYSQL_SHA256=263040d2779a3b84930f7ac9da5132be0fefcd6f453a885756656103f8ee1fdd
SUITES_CACHE="${DPM_SUITES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dpm-suites}"

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

for tool in mariadbd mariadb-install-db mariadb mariadb-admin mariadb-test sysbench tmux \
            mariadb_config /usr/share/mysql/mysql-test/mariadb-test-run.pl; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] \
        || { echo "install-deps: $tool missing after install" >&2; exit 1; }
done

if ! cargo deb --version 2>/dev/null | grep -q "cargo-deb $CARGO_DEB_VERSION"; then
    echo "install-deps: cargo install cargo-deb $CARGO_DEB_VERSION"
    run cargo install --quiet --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi

PY=python3
if ! "$PY" -c "import $PY_MODULES" >/dev/null 2>&1; then
    echo "install-deps: pip install ${PIP_PACKAGES[*]} (for $(command -v "$PY"))"
    run "$PY" -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}"
fi
"$PY" -c "import $PY_MODULES" || { echo "install-deps: python modules missing" >&2; exit 1; }

suite="$SUITES_CACHE/PyMySQL-$SUITE_PYMYSQL"
if [ ! -f "$suite/pymysql/tests/base.py" ]; then
    echo "install-deps: PyMySQL $SUITE_PYMYSQL's test suite into $SUITES_CACHE"
    mkdir -p "$SUITES_CACHE"
    dl=$(mktemp -d "$SUITES_CACHE/.download-XXXXXX")
    run "$PY" -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
        -d "$dl" "PyMySQL==$SUITE_PYMYSQL"
    sdist="$dl/PyMySQL-$SUITE_PYMYSQL.tar.gz"
    if ! echo "$SUITE_PYMYSQL_SHA256  $sdist" | sha256sum --check --quiet >/dev/null 2>&1; then
        echo "install-deps: $sdist is not the sdist expected (SHA-256)" >&2
        rm -rf "$dl"
        exit 1
    fi
    run tar xzf "$sdist" -C "$dl"
    # Another run may have put it there meanwhile: then keep that one.
    mv -T "$dl/PyMySQL-$SUITE_PYMYSQL" "$suite" 2>/dev/null || [ -f "$suite/pymysql/tests/base.py" ]
    rm -rf "$dl"
fi
echo "install-deps: ok"
