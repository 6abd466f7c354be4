#!/usr/bin/env bash
# weft migrate end to end against the test server: --help, bad usage (2),
# applying (one JSON line per file), a re-run (nothing), --status, a failing
# file and a changed one (exit 1, named on stderr).
#   test_migrate_cli.sh WEFT_BINARY PG_URL_FILE
set -uo pipefail
WEFT=$(realpath "$1"); URL=$(cat "$2")
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0
check() { local what=$1; shift; if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fails=$((fails + 1)); fi; }
psql "$URL" -qc 'DROP TABLE IF EXISTS schema_migrations, cli_a, cli_b CASCADE' 2>/dev/null
mkdir "$T/migrations"
cd "$T"

"$WEFT" migrate --help >/dev/null; check "--help: 0" test $? = 0
env -u WEFT_PG_URL "$WEFT" migrate >/dev/null 2>"$T/err"; rc=$?
check "no URL: 2" test $rc = 2
check "no URL: says so" grep -q 'WEFT_PG_URL' "$T/err"
"$WEFT" migrate --bogus >/dev/null 2>&1; check "unknown flag: 2" test $? = 2
"$WEFT" migrate --url "$URL" --dir "$T/none" >/dev/null 2>"$T/err"; rc=$?
check "missing folder: 1" test $rc = 1
check "missing folder: named" grep -q "$T/none" "$T/err"

echo 'CREATE TABLE cli_a(x int);' > migrations/0001_a.sql
echo 'CREATE TABLE cli_b(x int); INSERT INTO cli_b VALUES (1);' > migrations/0002_b.sql
out=$(WEFT_PG_URL=$URL "$WEFT" migrate); rc=$?
check "apply: 0" test $rc = 0
check "apply: one line per file" test "$out" = $'{"version":1,"name":"a","applied":true}\n{"version":2,"name":"b","applied":true}'
out=$("$WEFT" migrate --url "$URL"); rc=$?
check "again: 0, nothing printed" test "$rc:$out" = "0:"
echo 'CREATE TABLE cli_c(x int);' > migrations/0003_c.sql
out=$("$WEFT" migrate --url "$URL" --status); rc=$?
check "status: 0" test $rc = 0
check "status: 3 lines" test "$(wc -l <<<"$out")" = 3
check "status: applied ones" test "$(grep -c '"applied":true' <<<"$out")" = 2
check "status: the pending one" grep -q '"version":3,"name":"c","applied":false' <<<"$out"

printf 'CREATE TABLE cli_d(x int);\n\nSELEC 1;\n' > migrations/0003_c.sql
"$WEFT" migrate --url "$URL" >/dev/null 2>"$T/err"; rc=$?
check "failing file: 1" test $rc = 1
check "failing file: file and line" grep -q '0003_c.sql line 3' "$T/err"
check "failing file: nothing left" test "$(psql "$URL" -Atc "select count(*) from pg_tables where tablename='cli_d'")" = 0
rm migrations/0003_c.sql
echo '-- edited' >> migrations/0001_a.sql
"$WEFT" migrate --url "$URL" >/dev/null 2>"$T/err"; rc=$?
check "changed file: 1" test $rc = 1
check "changed file: named" grep -q '0001_a.sql was changed' "$T/err"
"$WEFT" migrate --url "$URL" --status >"$T/out" 2>"$T/err"; rc=$?
check "status with a changed file: 1" test $rc = 1
check "status: marks it" grep -q '"changed":true' "$T/out"
psql "$URL" -qc 'DROP TABLE IF EXISTS schema_migrations, cli_a, cli_b CASCADE' 2>/dev/null
echo "$fails failed"
[ $fails -eq 0 ]
