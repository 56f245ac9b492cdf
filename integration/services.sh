#!/usr/bin/env bash
# Throw-away PostgreSQL and MariaDB servers on 127.0.0.1 for the tests: no
# systemd, no Docker; Debian's server binaries run from a private state folder
# and are stopped by their own pid.
#
#   services.sh start         initialise and start the servers, create the test
#                             database and user, write "$SVC_DIR/env"
#   services.sh stop          stop the servers and delete SVC_DIR
#   services.sh down NAME     stop one server, keeping its data (outage tests)
#   services.sh up NAME       start it again on the same data
#   services.sh kill NAME     SIGKILL it (keeps data; `up` restarts it)
#   services.sh crash NAME    stop it as a crash would: PostgreSQL's immediate
#                             shutdown (every process at once, no checkpoint),
#                             SIGKILL for MariaDB
#   services.sh pause NAME    SIGSTOP it and its processes (a stalled server)
#   services.sh resume NAME   SIGCONT them
#   services.sh status        say what runs
#   services.sh env           print the env file
#   services.sh standby       (SERVICES=postgres) start a streaming standby of the
#                             server on PRIMARY_PORT (pg_basebackup -R) in SVC_DIR
#   services.sh promote       promote that standby: it takes writes from now on
#   services.sh sync NAMES    (a PostgreSQL primary) synchronous_standby_names:
#                             '*' makes each commit wait until a standby has it,
#                             '' stops waiting (set once the standby runs)
#   services.sh replica       (SERVICES=mariadb) start a GTID replica of the server
#                             on PRIMARY_PORT (read-only) in SVC_DIR
#
# Env (defaults): SVC_DIR (${TMPDIR:-/tmp}/larder-services), SERVICES
# ("postgres mariadb"), PG_PORT (15432), MYSQL_PORT (13306), DB_NAME, DB_USER,
# DB_PASS (feast), START_TIMEOUT (60 s), DB_DURABLE (0: commits are not
# waited for, for speed; 1: a commit survives the server's crash, though not
# the machine's — PostgreSQL synchronous_commit on, InnoDB log written at
# every commit — for the tests that kill the server and count acknowledged writes),
# REPLICATION (0; 1: a server that standbys and replicas can follow: a
# replication user, the binary log on MariaDB), PRIMARY_PORT (for standby
# and replica), PG_STAT_STATEMENTS (0; 1: pg_stat_statements counts every
# statement's executions and plannings, in the test database, for the tests
# that check how often the server plans larder's statements; off for bench/).
set -euo pipefail

SVC_DIR=${SVC_DIR:-${TMPDIR:-/tmp}/larder-services}
SERVICES=${SERVICES:-"postgres mariadb"}
MYSQL_PORT=${MYSQL_PORT:-13306}
PG_PORT=${PG_PORT:-15432}
DB_NAME=${DB_NAME:-feast}
DB_USER=${DB_USER:-feast}
DB_PASS=${DB_PASS:-feast}
START_TIMEOUT=${START_TIMEOUT:-60}
HOST=127.0.0.1
MY_DIR=$SVC_DIR/mariadb
PG_DIR=$SVC_DIR/postgres

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
has() { case " $SERVICES " in *" $1 "*) return 0 ;; esac; return 1; }
IS_ROOT=0; [ "$(id -u)" -eq 0 ] && IS_ROOT=1

as_user() {
  local u=$1; shift
  if [ "$u" = "$(id -un)" ]; then "$@"
  elif [ "$IS_ROOT" = 1 ]; then runuser -u "$u" -- "$@"
  else die "cannot switch to user $u without root"; fi
}

# A process that exists and has not exited (a zombie has).
pid_alive() {
  local line st
  [ -n "$1" ] && line=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${line##*) }; st=${st%% *}
  [ "$st" != Z ] && [ "$st" != X ]
}

# A live process of this folder's (its command line names it): a pid file
# may name a process that has since exited and whose pid was reused.
pid_ours() {
  pid_alive "$1" && { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$SVC_DIR"
}

wait_gone() {  # pid seconds
  local t=$(( $2 * 20 ))
  while [ "$t" -gt 0 ] && pid_ours "$1"; do sleep 0.05; t=$((t - 1)); done
  ! pid_ours "$1"
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# ------------------------------------------------------------------ PostgreSQL
pg_bin() {
  local d; d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$d/initdb" ] || die "initdb not found (apt-get install postgresql)"
  echo "$d"
}
pg_user() { if [ "$IS_ROOT" = 1 ]; then echo postgres; else id -un; fi; }
pg_pid() { [ -s "$PG_DIR/data/postmaster.pid" ] && head -n 1 "$PG_DIR/data/postmaster.pid" || true; }

pg_up() {
  local bin u pid t=200; bin=$(pg_bin); u=$(pg_user)
  # After a SIGKILL the old postmaster may linger as a zombie until it is
  # reaped, and PostgreSQL refuses to start while its pid exists.
  pid=$(pg_pid)
  while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$t" -gt 0 ]; do sleep 0.05; t=$((t - 1)); done
  port_busy "$PG_PORT" && die "port $PG_PORT is in use"
  as_user "$u" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t "$START_TIMEOUT" start \
    > "$PG_DIR/pg_ctl.log" 2>&1 || { cat "$PG_DIR/pg_ctl.log" "$PG_DIR/server.log" >&2; die "postgres did not start"; }
  log "postgres: up on $HOST:$PG_PORT (pid $(pg_pid))"
}

pg_start() {
  local bin u; bin=$(pg_bin); u=$(pg_user)
  id "$u" >/dev/null 2>&1 || die "user $u is missing (the postgresql package creates it)"
  mkdir -p "$PG_DIR/sock"
  [ "$IS_ROOT" = 1 ] && chown -R "$u" "$PG_DIR"
  chmod 700 "$PG_DIR"
  as_user "$u" "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 --no-sync > "$PG_DIR/initdb.log" 2>&1 \
    || { tail -n 30 "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
  cat >> "$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/sock'
timezone = 'UTC'
log_timezone = 'UTC'
fsync = off
synchronous_commit = $([ "${DB_DURABLE:-0}" = 1 ] && echo on || echo off)
full_page_writes = off
max_connections = 200
CONF
  if [ "${PG_STAT_STATEMENTS:-0}" = 1 ]; then cat >> "$PG_DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track_planning = on
CONF
  fi
  if [ "${REPLICATION:-0}" = 1 ]; then cat >> "$PG_DIR/data/postgresql.conf" <<CONF
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
CONF
  fi
  pg_up
  "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR/sock" -p "$PG_PORT" -U postgres -d postgres \
    > "$PG_DIR/setup.log" 2>&1 <<SQL || { cat "$PG_DIR/setup.log" >&2; die "postgres setup failed"; }
CREATE ROLE "$DB_USER" LOGIN CREATEDB PASSWORD '$DB_PASS';
CREATE DATABASE "$DB_NAME" OWNER "$DB_USER" ENCODING 'UTF8' TEMPLATE template0;
CREATE ROLE replicator LOGIN REPLICATION PASSWORD 'replicator';
SQL
  if [ "${PG_STAT_STATEMENTS:-0}" = 1 ]; then
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR/sock" -p "$PG_PORT" -U postgres -d "$DB_NAME" \
      -c 'CREATE EXTENSION pg_stat_statements' >> "$PG_DIR/setup.log" 2>&1 \
      || { cat "$PG_DIR/setup.log" >&2; die "postgres: pg_stat_statements failed"; }
  fi
  PGPASSWORD=$DB_PASS "$bin/psql" -X -q -h "$HOST" -p "$PG_PORT" -U "$DB_USER" -d "$DB_NAME" -tAc 'SELECT 1' \
    >/dev/null || die "postgres: TCP login as $DB_USER failed"
}

pg_down() {  # signal: INT = fast shutdown, KILL = crash
  local pid; pid=$(pg_pid)
  pid_ours "$pid" || { log "postgres: not running"; return 0; }
  kill "-${1:-INT}" "$pid" 2>/dev/null || true
  wait_gone "$pid" 60 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || die "postgres would not stop"; }
  # After SIGKILL the children go on briefly; wait until the port is free.
  local t=200; while [ "$t" -gt 0 ] && port_busy "$PG_PORT"; do sleep 0.05; t=$((t - 1)); done
  log "postgres: down"
}

# A standby of the PostgreSQL server on PRIMARY_PORT: a base backup streamed
# over a replication connection, with -R writing standby.signal and
# primary_conninfo; its own port and socket folder.
pg_standby() {
  local bin u; bin=$(pg_bin); u=$(pg_user)
  [ -n "${PRIMARY_PORT:-}" ] || die "standby: set PRIMARY_PORT"
  mkdir -p "$PG_DIR/sock"
  [ "$IS_ROOT" = 1 ] && chown -R "$u" "$PG_DIR"
  chmod 700 "$PG_DIR"
  as_user "$u" env PGPASSWORD=replicator "$bin/pg_basebackup" -h "$HOST" -p "$PRIMARY_PORT" -U replicator \
    -D "$PG_DIR/data" -R -X stream -c fast --no-sync > "$PG_DIR/basebackup.log" 2>&1 \
    || { cat "$PG_DIR/basebackup.log" >&2; die "pg_basebackup failed"; }
  # The primary's own settings came with the copy: this server's port and socket win.
  cat >> "$PG_DIR/data/postgresql.conf" <<CONF
port = $PG_PORT
unix_socket_directories = '$PG_DIR/sock'
hot_standby = on
synchronous_standby_names = ''
CONF
  pg_up
}

pg_promote() {
  as_user "$(pg_user)" "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -w -t "$START_TIMEOUT" promote \
    > "$PG_DIR/promote.log" 2>&1 || { cat "$PG_DIR/promote.log" >&2; die "promote failed"; }
  log "postgres: promoted on $HOST:$PG_PORT"
}

# --------------------------------------------------------------------- MariaDB
mysqld_bin() { command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd; }
my_sql() { mariadb --no-defaults --protocol=socket --socket="$MY_DIR/mysqld.sock" -uroot "$@"; }
my_user() { if [ "$IS_ROOT" = 1 ] && id mysql >/dev/null 2>&1; then echo mysql; else id -un; fi; }
my_pid() { cat "$MY_DIR/mysqld.pid" 2>/dev/null || cat "$MY_DIR/launch.pid" 2>/dev/null || true; }

my_up() {
  local u; u=$(my_user)
  local userarg=(); [ "$IS_ROOT" = 1 ] && userarg=(--user="$u")
  # A primary writes the binary log that replicas follow (by GTID); a replica
  # is read-only. The server id tells them apart.
  local repl=(--skip-log-bin)
  [ "${REPLICATION:-0}" = 1 ] && repl=(--log-bin="$MY_DIR/binlog" --binlog-format=ROW --server-id=1)
  [ -e "$MY_DIR/replica" ] && repl=(--skip-log-bin --server-id=2 --read-only --relay-log="$MY_DIR/relay")
  port_busy "$MYSQL_PORT" && die "port $MYSQL_PORT is in use"
  rm -f "$MY_DIR/mysqld.pid"
  nohup "$(mysqld_bin)" --no-defaults "${userarg[@]}" --datadir="$MY_DIR/data" \
    --bind-address="$HOST" --port="$MYSQL_PORT" --socket="$MY_DIR/mysqld.sock" \
    --pid-file="$MY_DIR/mysqld.pid" --log-error="$MY_DIR/error.log" --skip-name-resolve "${repl[@]}" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci --default-time-zone=+00:00 \
    --innodb-buffer-pool-size=128M --innodb-log-file-size=48M --innodb-flush-log-at-trx-commit="$([ "${DB_DURABLE:-0}" = 1 ] && echo 2 || echo 0)" \
    --innodb-doublewrite=0 --innodb-buffer-pool-dump-at-shutdown=0 --innodb-buffer-pool-load-at-startup=0 \
    --max-connections=200 < /dev/null > "$MY_DIR/stdout.log" 2>&1 &
  echo $! > "$MY_DIR/launch.pid"
  local t=$(( START_TIMEOUT * 10 ))
  until mariadb-admin --no-defaults --protocol=socket --socket="$MY_DIR/mysqld.sock" -uroot \
        --connect-timeout=1 ping >/dev/null 2>&1; do
    # Our own child: until it has exec'd mariadbd its command line is this
    # script's, so only "has it exited" is asked.
    pid_alive "$(cat "$MY_DIR/launch.pid")" || { tail -n 30 "$MY_DIR/error.log" >&2; die "mariadbd exited"; }
    t=$((t - 1)); [ "$t" -gt 0 ] || die "mariadbd not ready after ${START_TIMEOUT}s"
    sleep 0.1
  done
  log "mariadb: up on $HOST:$MYSQL_PORT (pid $(my_pid))"
}

my_start() {
  local u; u=$(my_user)
  local userarg=(); [ "$IS_ROOT" = 1 ] && userarg=(--user="$u")
  mkdir -p "$MY_DIR"
  [ "$IS_ROOT" = 1 ] && chown "$u" "$MY_DIR"
  chmod 700 "$MY_DIR"
  mariadb-install-db --no-defaults "${userarg[@]}" --datadir="$MY_DIR/data" \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    > "$MY_DIR/install-db.log" 2>&1 || { tail -n 30 "$MY_DIR/install-db.log" >&2; die "mariadb-install-db failed"; }
  my_up
  # With --skip-name-resolve a TCP client from 127.0.0.1 matches host '%'.
  my_sql > "$MY_DIR/setup.log" 2>&1 <<SQL || { cat "$MY_DIR/setup.log" >&2; die "mariadb setup failed"; }
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'%', '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
  if [ "${REPLICATION:-0}" = 1 ]; then
    my_sql -e "CREATE USER 'repl'@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';" \
      || die "mariadb: replication user"
  fi
  # mariadb-install-db also made password-less root accounts reachable over TCP: drop them.
  my_sql -Nse "SELECT CONCAT('DROP USER ', QUOTE(User), '@', QUOTE(Host), ';') FROM mysql.user WHERE User='root' AND Host<>'localhost'" \
    | my_sql || die "mariadb: dropping TCP root accounts failed"
  MYSQL_PWD=$DB_PASS mariadb --no-defaults --protocol=tcp -h "$HOST" -P "$MYSQL_PORT" -u "$DB_USER" "$DB_NAME" \
    -Nse 'SELECT 1' >/dev/null || die "mariadb: TCP login as $DB_USER failed"
}

# A replica of the MariaDB server on PRIMARY_PORT, set up as any server here
# (its own database and users), then following the primary from its current
# GTID position: what the primary writes from now on, it writes too.
my_replica() {
  [ -n "${PRIMARY_PORT:-}" ] || die "replica: set PRIMARY_PORT"
  mkdir -p "$MY_DIR"
  touch "$MY_DIR/replica"
  my_start
  local pos
  pos=$(MYSQL_PWD=repl mariadb --no-defaults --protocol=tcp -h "$HOST" -P "$PRIMARY_PORT" -u repl -Nse \
    'SELECT @@GLOBAL.gtid_binlog_pos') || die "replica: cannot reach the primary on $PRIMARY_PORT"
  my_sql > "$MY_DIR/replica.log" 2>&1 <<SQL || { cat "$MY_DIR/replica.log" >&2; die "mariadb: replication setup failed"; }
SET GLOBAL gtid_slave_pos = '$pos';
CHANGE MASTER TO MASTER_HOST='$HOST', MASTER_PORT=$PRIMARY_PORT, MASTER_USER='repl',
  MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
START SLAVE;
SQL
  log "mariadb: replica of $HOST:$PRIMARY_PORT from GTID '$pos'"
}

my_down() {
  local pid; pid=$(my_pid)
  pid_ours "$pid" || { log "mariadb: not running"; return 0; }
  kill "-${1:-TERM}" "$pid" 2>/dev/null || true
  wait_gone "$pid" 60 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || die "mariadb would not stop"; }
  log "mariadb: down"
}

# ------------------------------------------------------------------------ main
write_env() {
  : > "$SVC_DIR/env"
  if has postgres; then cat >> "$SVC_DIR/env" <<ENV
export TEST_PG_HOST=$HOST TEST_PG_PORT=$PG_PORT TEST_PG_USER=$DB_USER TEST_PG_PASSWORD=$DB_PASS TEST_PG_DB=$DB_NAME
export TEST_PG_SVC_DIR=$SVC_DIR
ENV
  fi
  if has mariadb; then cat >> "$SVC_DIR/env" <<ENV
export TEST_MYSQL_HOST=$HOST TEST_MYSQL_PORT=$MYSQL_PORT TEST_MYSQL_USER=$DB_USER TEST_MYSQL_PASSWORD=$DB_PASS TEST_MYSQL_DB=$DB_NAME
export TEST_MYSQL_SVC_DIR=$SVC_DIR
ENV
  fi
}

cmd_stop() {
  has postgres && pg_down INT
  has mariadb && my_down TERM
  rm -rf -- "$SVC_DIR"
  log "stopped; removed $SVC_DIR"
}

cmd_start() {
  [ -n "$(ls -A "$SVC_DIR" 2>/dev/null)" ] && { log "$SVC_DIR is not empty: stopping what ran there"; cmd_stop; }
  mkdir -p "$SVC_DIR"
  chmod 755 "$SVC_DIR"   # the server users must reach their folders
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "start failed: cleaning up"; cmd_stop || true; fi' EXIT
  has postgres && pg_start
  has mariadb && my_start
  trap - EXIT
  write_env
  cat "$SVC_DIR/env"
}

one() { case "$1" in postgres | mariadb) ;; *) die "name postgres or mariadb, not '$1'" ;; esac; }

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  down) one "${2:-}"; if [ "$2" = postgres ]; then pg_down INT; else my_down TERM; fi ;;
  kill) one "${2:-}"; if [ "$2" = postgres ]; then pg_down KILL; else my_down KILL; fi ;;
  crash) one "${2:-}"; if [ "$2" = postgres ]; then pg_down QUIT; else my_down KILL; fi ;;
  up) one "${2:-}"; if [ "$2" = postgres ]; then pg_up; else my_up; fi ;;
  standby | replica)
    [ -n "$(ls -A "$SVC_DIR" 2>/dev/null)" ] && die "$SVC_DIR is not empty"
    mkdir -p "$SVC_DIR"; chmod 755 "$SVC_DIR"
    trap 'rc=$?; if [ $rc -ne 0 ]; then log "start failed: cleaning up"; cmd_stop || true; fi' EXIT
    if [ "$1" = standby ]; then SERVICES=postgres; pg_standby; else SERVICES=mariadb; my_replica; fi
    trap - EXIT
    write_env ;;
  promote) pg_promote ;;
  sync)
    "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR/sock" -p "$PG_PORT" -U postgres -d postgres \
      -c "ALTER SYSTEM SET synchronous_standby_names = '${2:-}'" -c "SELECT pg_reload_conf()" >/dev/null \
      || die "sync: cannot set synchronous_standby_names"
    log "postgres: synchronous_standby_names = '${2:-}'" ;;
  pause | resume) # SIGSTOP / SIGCONT: the server and every process of it (PostgreSQL's backends)
    one "${2:-}"
    if [ "$2" = postgres ]; then pid=$(pg_pid); else pid=$(my_pid); fi
    pid_ours "$pid" || die "$2 is not running"
    sig=STOP; [ "$1" = resume ] && sig=CONT
    kill "-$sig" "$pid" $(pgrep -P "$pid" || true)
    log "$2: ${1}d" ;;
  status)
    has postgres && { pid_ours "$(pg_pid)" && echo "postgres: running, pid $(pg_pid)" || echo "postgres: stopped"; }
    has mariadb && { pid_ours "$(my_pid)" && echo "mariadb: running, pid $(my_pid)" || echo "mariadb: stopped"; }
    ;;
  env) cat "$SVC_DIR/env" ;;
  *) echo "usage: $0 start|stop|status|env|down NAME|up NAME|kill NAME|crash NAME|pause NAME|resume NAME|standby|promote|sync NAMES|replica" >&2; exit 2 ;;
esac
