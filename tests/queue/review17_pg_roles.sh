#!/bin/sh
# Review of issue 17: a role with every right the queue uses (USAGE on the
# schema, DML on its tables, its sequences, EXECUTE on its functions) cannot
# open an already migrated PostgreSQL queue: every open runs CREATE SCHEMA IF
# NOT EXISTS and CREATE TABLE IF NOT EXISTS, which need CREATE on the
# database and on the schema even when both exist.
# Usage: review17_pg_roles.sh WEFT_CLI PGDIR   (PGDIR from scripts/services start pg PGDIR)
set -eu
weft=$1 dir=$2
url=$(cat "$dir/url") port=$(cat "$dir/port")
"$weft" queue --url "$url" stats >/dev/null            # migrated by the owner
su_psql() { setpriv --reuid=postgres --regid=postgres --init-groups \
    psql -h "$dir" -p "$port" -d weft -qc "$1"; }
su_psql "DO \$\$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'r17') THEN DROP OWNED BY r17; DROP ROLE r17; END IF; END \$\$; CREATE ROLE r17 LOGIN PASSWORD 'r17';
  GRANT USAGE ON SCHEMA weft_queue TO r17;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA weft_queue TO r17;
  GRANT USAGE ON ALL SEQUENCES IN SCHEMA weft_queue TO r17;
  GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA weft_queue TO r17;
  REVOKE CREATE ON DATABASE weft FROM PUBLIC;"
r17=$(echo "$url" | sed 's#//[^@]*@#//r17:r17@#')
psql "$r17" -Atc "SELECT count(*) FROM weft_queue.claim('x', NULL, 1, 1000, 5)"  # it may work the queue
if "$weft" queue --url "$r17" stats; then echo "PASS: opened"; else echo "FAIL: cannot open"; exit 1; fi
