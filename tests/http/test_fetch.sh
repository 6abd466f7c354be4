#!/usr/bin/env bash
# End-to-end tests of `weft fetch` against nginx started here (own config in
# a temp dir, 127.0.0.1 only), and a port where nothing listens.
set -euo pipefail
WEFT=${1:?usage: test_fetch.sh path/to/weft}
T=$(mktemp -d /tmp/weft-fetch-XXXXXX)
chmod 755 $T           # nginx workers run as nobody
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill $(cat $T/nginx.pid 2>/dev/null) 2>/dev/null || true; rm -rf $T' EXIT
mkdir -p $T/www $T/logs
printf 'Hello, World!' > $T/www/hello
head -c 65536 /dev/urandom > $T/www/64k
cat > $T/nginx.conf <<CONF
daemon on;
worker_processes 1;
pid $T/nginx.pid;
error_log $T/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $T/tmp; proxy_temp_path $T/tmp; fastcgi_temp_path $T/tmp;
  uwsgi_temp_path $T/tmp; scgi_temp_path $T/tmp;
  server {
    listen 127.0.0.1:$PORT;
    root $T/www;
    keepalive_requests 100000;
    location = /hello { default_type text/plain; }
    location = /slow { return 200 "late"; }
  }
}
CONF
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
$NGINX -c $T/nginx.conf -e $T/logs/error.log
for i in $(seq 50); do curl -fsS http://127.0.0.1:$PORT/hello >/dev/null 2>&1 && break; sleep 0.1; done

fails=0
check() {  # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fails=$((fails + 1)); fi
}
U=http://127.0.0.1:$PORT

# every URL answered: exit 0, one JSON line each with status and bytes
out=$($WEFT fetch -c 4 $U/hello $U/64k $U/hello 2>$T/err) ; rc=$?
check "exit 0 when all answered" test $rc -eq 0
check "one line per URL" test "$(echo "$out" | wc -l)" -eq 3
check "status and bytes for /hello" grep -q "\"url\":\"$U/hello\",\"status\":200,\"bytes\":13,\"ms\":" <<<"$out"
check "bytes for /64k" grep -q '"status":200,"bytes":65536' <<<"$out"
check "summary on stderr" grep -q "fetched 3 URLs" $T/err
check "latency percentiles" grep -q "p50 .* p90 .* p99" $T/err
check "counts by status" grep -q "status 200: 3" $T/err
check "no progress bar without a terminal" bash -c "! grep -q 'ETA' $T/err"

# a 404 is a response (exit 0) unless --fail
set +e
$WEFT fetch $U/missing >$T/out 2>/dev/null; rc=$?
check "404 is a response" test $rc -eq 0
check "404 reported" grep -q '"status":404' $T/out
$WEFT fetch --fail $U/missing >/dev/null 2>&1; rc=$?
check "--fail makes 404 a failure" test $rc -eq 1

# errors carry the client's message
$WEFT fetch http://127.0.0.1:1/ >$T/out 2>/dev/null; rc=$?
check "refused is a failure" test $rc -eq 1
check "refused message" grep -q '"error":"Connection refused"' $T/out
$WEFT fetch "http://user@127.0.0.1:$PORT/" >$T/out 2>/dev/null; rc=$?
check "bad URL named" grep -q '"error":"bad URL: user information' $T/out

# input from a file and from stdin; -o saves bodies
printf "$U/hello\n# a comment\n\n$U/64k\n" > $T/urls
$WEFT fetch -i $T/urls >$T/out 2>/dev/null; rc=$?
check "-i FILE" test "$(wc -l < $T/out)" -eq 2
echo "$U/hello" | $WEFT fetch -i - >$T/out 2>/dev/null
check "-i -" grep -q '"bytes":13' $T/out
mkdir $T/bodies
$WEFT fetch -o $T/bodies $U/hello >/dev/null 2>&1
check "-o DIR saves the body" grep -q "Hello, World!" $T/bodies/*

# bad arguments: usage and exit 2
for args in "" "-c 0 $U/hello" "-c x $U/hello" "--timeout -1 $U/hello" "--bogus $U/hello" \
            "-o /nonexistent-dir $U/hello" "-i /nonexistent-file"; do
  $WEFT fetch $args >/dev/null 2>$T/err; rc=$?
  check "bad arguments ($args) exit 2" test $rc -eq 2
  check "bad arguments ($args) print usage" grep -q "usage: weft fetch" $T/err
done

# many URLs, bounded concurrency
for i in $(seq 500); do echo "$U/hello"; done > $T/many
$WEFT fetch -c 50 -i $T/many >$T/out 2>/dev/null; rc=$?
check "500 URLs with 50 in flight" test "$(grep -c '"status":200' $T/out)" -eq 500

# a slow reader of stdout does not stall the loop: ~1 MB of lines into a
# pipe whose reader starts 2 s late (the stall detector names any task that
# holds the loop for 100 ms, a blocking write included)
pad=$(head -c 300 /dev/zero | tr '\0' x)
for i in $(seq 3000); do echo "$U/hello?$pad$i"; done > $T/padded
$WEFT fetch -c 50 -i $T/padded 2>$T/err | (sleep 2; cat > $T/out)
check "slow stdout: every line written" test "$(grep -c '"status":200' $T/out)" -eq 3000
check "slow stdout: the loop never stalled" bash -c "! grep -q 'stall' $T/err"

# every input gets its line, and errors say what happened (issue 18 item 13)
printf '%s/hello\n%s/\xff\xfe\n%s/hello\n' $U $U $U > $T/utf
$WEFT fetch -i $T/utf >$T/out 2>/dev/null
check "a URL with invalid UTF-8 gets its line" test "$(wc -l < $T/out)" -eq 3
check "... percent-encoded, with the reason" grep -q '"url":"'$U'/%FF%FE","error":"bad URL' $T/out
mkdir -p $T/adir
$WEFT fetch -i $T/adir >/dev/null 2>$T/err; rc=$?
check "-i with a directory: exit 2, says so" test $rc -eq 2 -a -n "$(grep 'Is a directory' $T/err)"
TRUNC_OUT=$T/trunc.port
python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); c.recv(4096)
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"); c.close()' >$TRUNC_OUT &
for i in $(seq 50); do test -s $TRUNC_OUT && break; sleep 0.1; done
$WEFT fetch http://127.0.0.1:$(cat $TRUNC_OUT)/ >$T/out 2>/dev/null
check "a truncated body says so (not 'Protocol error')" grep -q '"error":"truncated response"' $T/out
# an unknown name says so (it read "No such file or directory"); a machine
# whose resolver does not answer at all says that instead
$WEFT fetch --timeout 5 http://nowhere.invalid/ >$T/out 2>/dev/null
if grep -q '"error":"\(connect timeout\|deadline exceeded\|DNS server failure\)"' $T/out; then
  echo "ok - unknown host # SKIP no DNS answers here: $(cat $T/out)"
else
  check "an unknown host: 'name not found'" grep -q '"error":"name not found"' $T/out
fi

# the progress bar, under a pseudo-terminal
script -qfec "$WEFT fetch -c 5 -i $T/many" /dev/null >$T/tty 2>&1 </dev/null; rc=$?
check "progress bar on a terminal" grep -q "500/500" $T/tty
check "progress bar shows rate and ETA" grep -q "req/s.*failed.*ETA" $T/tty
set -e

echo "fetch end-to-end: $fails failed"
[ $fails -eq 0 ]
