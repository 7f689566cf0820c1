#!/usr/bin/env bash
# Start (or stop) the two stand-in servers that configs/online-local-judge.yaml talks to, on 127.0.0.1 only:
#
#   bash examples/start_local_servers.sh          # generator on :8011, judge on :8012; returns once both answer
#   cutalign online --config online-local-judge
#   bash examples/start_local_servers.sh stop     # stop both
#
# Both are examples/openai_generation_server.py serving the embedded SmolLM2-135M-Instruct ("default"). Logs and
# process ids go to $SERVER_DIR (default runs/local-servers). PYTHON selects the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SERVER_DIR=${SERVER_DIR:-runs/local-servers}
mkdir -p "$SERVER_DIR"

stop() {
  for name in generator judge; do
    if [ -f "$SERVER_DIR/$name.pid" ]; then
      kill "$(cat "$SERVER_DIR/$name.pid")" 2>/dev/null || true
      rm -f "$SERVER_DIR/$name.pid"
      echo "stopped the $name server"
    fi
  done
}

if [ "${1:-}" = "stop" ]; then
  stop
  exit 0
fi

start() {  # name port
  if [ -f "$SERVER_DIR/$1.pid" ] && kill -0 "$(cat "$SERVER_DIR/$1.pid")" 2>/dev/null; then
    echo "the $1 server is already running (pid $(cat "$SERVER_DIR/$1.pid"))"
    return
  fi
  HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    "$PYTHON" examples/openai_generation_server.py --model default --port "$2" >"$SERVER_DIR/$1.log" 2>&1 &
  echo $! >"$SERVER_DIR/$1.pid"
}

start generator 8011
start judge 8012
for port in 8011 8012; do  # the model loads in about 20 s on 2 CPU cores
  for _ in $(seq 1 180); do
    if "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v1/models', timeout=2)" \
      2>/dev/null; then
      break
    fi
    sleep 1
  done
  "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v1/models', timeout=2)" \
    || { echo "the server on port $port did not start; see $SERVER_DIR/*.log" >&2; stop; exit 1; }
done
echo "generator: http://127.0.0.1:8011/v1, judge: http://127.0.0.1:8012/v1 (logs in $SERVER_DIR)"
echo "stop them with: bash examples/start_local_servers.sh stop"
