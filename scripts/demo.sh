#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine and runs dpm in front of a MariaDB it
# starts itself: installs the packages (apt-get), builds dpm, starts a throw-away
# mariadbd on 127.0.0.1:${DPM_DEMO_DB_PORT:-3307} (datadir under ${DPM_DEMO_DIR:-/tmp/dpm-demo}),
# creates the account dpm/dpm, then runs `dpm --startfile examples/passthrough.lua`
# listening on 127.0.0.1:${DPM_DEMO_PORT:-5500}. Ctrl-C stops dpm and the MariaDB.
set -euo pipefail
cd "$(dirname "$0")/.."

demo_dir=${DPM_DEMO_DIR:-/tmp/dpm-demo}
db_port=${DPM_DEMO_DB_PORT:-3307}
proxy_port=${DPM_DEMO_PORT:-5500}
startfile=${1:-examples/passthrough.lua}

bash scripts/install-deps.sh
echo "== building dpm (release)"
cargo build --release -p dpm --quiet

mkdir -p "$demo_dir"
datadir="$demo_dir/data"
if [ ! -d "$datadir/mysql" ]; then
  echo "== initialising a MariaDB datadir in $datadir"
  mariadb-install-db --no-defaults --datadir="$datadir" --user=root \
    --auth-root-authentication-method=socket >"$demo_dir/install.log" 2>&1
fi
echo "== starting mariadbd on 127.0.0.1:$db_port"
mariadbd --no-defaults --datadir="$datadir" --socket="$demo_dir/mysqld.sock" \
  --port="$db_port" --bind-address=127.0.0.1 --user=root --skip-log-bin --skip-name-resolve \
  --pid-file="$demo_dir/mysqld.pid" --log-error="$demo_dir/error.log" &
db_pid=$!
trap 'kill "$db_pid" 2>/dev/null; wait "$db_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  mariadb --no-defaults -S "$demo_dir/mysqld.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 "$db_pid" 2>/dev/null || { echo "mariadbd died; see $demo_dir/error.log"; exit 1; }
  sleep 0.5
done
mariadb --no-defaults -S "$demo_dir/mysqld.sock" -uroot <<SQL
-- mariadb-install-db creates anonymous accounts that would shadow 'dpm'@'%'.
DELETE FROM mysql.global_priv WHERE User = '';
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS demo;
CREATE USER IF NOT EXISTS 'dpm'@'%' IDENTIFIED BY 'dpm';
GRANT ALL ON *.* TO 'dpm'@'%';
SQL

cat <<EOT

== dpm is starting on 127.0.0.1:$proxy_port in front of MariaDB on 127.0.0.1:$db_port
   In another terminal, connect through it with:

       mariadb -h127.0.0.1 -P$proxy_port -udpm -pdpm demo

   Ctrl-C here stops dpm and the MariaDB.

EOT
DPM_LISTEN_PORT=$proxy_port DPM_BACKEND_PORT=$db_port ./target/release/dpm --startfile "$startfile" --verbose 1
