#!/usr/bin/env bash
# Start or stop nginx on 127.0.0.1 serving a directory as an S3-style mirror (byte ranges, HEAD, ETag).
# Usage: test/support/mirror-server.sh start ROOT PORT STATE_DIR | stop STATE_DIR
# start first stops a server left running with the same STATE_DIR. With GIK_ACCESS_LOG=FILE every request
# is logged to FILE as "METHOD STATUS BYTES URI" (bench/: bytes each client read).
set -euo pipefail

# Stop the nginx whose pid file is in a state dir, if it runs.
stop_server() {
  if [ -f "$1/nginx.pid" ]; then
    kill "$(cat "$1/nginx.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$1/nginx.pid" ] || break; sleep 0.1; done
  fi
}

cmd=${1:?start|stop}
if [ "$cmd" = stop ]; then
  stop_server "${2:?state dir}"
  exit 0
fi

root=$(cd "${2:?root}" && pwd)
port=${3:?port}
state=${4:?state dir}
stop_server "$state"    # a server left from an earlier run with the same state dir
mkdir -p "$state"
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;"
cat > "$state/nginx.conf" <<CONF
$user_line
worker_processes 2;
daemon on;
pid $state/nginx.pid;
error_log $state/error.log warn;
events { worker_connections 1024; }
http {
  log_format bytes '\$request_method \$status \$body_bytes_sent \$uri';
  access_log ${GIK_ACCESS_LOG:-off}${GIK_ACCESS_LOG:+ bytes};
  client_body_temp_path $state/body;
  proxy_temp_path $state/proxy;
  fastcgi_temp_path $state/fastcgi;
  uwsgi_temp_path $state/uwsgi;
  scgi_temp_path $state/scgi;
  sendfile on;
  tcp_nopush off;
  keepalive_requests 100000;
  keepalive_timeout 65;
  types { }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$port;
    root $root;
    location / { }
  }
}
CONF
/usr/sbin/nginx -c "$state/nginx.conf" -p "$state"
for _ in $(seq 50); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/" -r 0-0 2>/dev/null && break
  [ -f "$state/nginx.pid" ] && break
  sleep 0.1
done
echo "nginx serving $root on http://127.0.0.1:$port" >&2
