#!/usr/bin/env bash
# smtp_sink.sh — SMTP sink on loopback that stores every message in a Maildir (Debian python3-aiosmtpd).
#
#   smtp_sink.sh start DIR     listen on a free 127.0.0.1 port; mail lands in DIR/maildir/new/ (one file each)
#   smtp_sink.sh stop  DIR
#
# Writes DIR/smtp.env (SMTP_HOST, SMTP_PORT, SMTP_MAILDIR, SMTP_PID). Accepts any sender, recipient, no AUTH.
# Optional STARTTLS: set SMTP_TLS_CERT and SMTP_TLS_KEY (PEM; e.g. server.crt/server.key from pki.sh);
# the sink then refuses MAIL before STARTTLS.
# The Mailbox handler adds X-Peer, X-MailFrom and X-RcptTo headers to each stored message.
set -euo pipefail

die() { echo "smtp_sink.sh: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
PY=/usr/bin/python3   # Debian's aiosmtpd lives in /usr/lib/python3/dist-packages; a pyenv python3 does not see it

# shellcheck source=tests/servers/packages.sh
. "$(dirname "${BASH_SOURCE[0]}")/packages.sh"

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() { [ -n "$(tr -d '\0' < "/proc/$1/cmdline" 2>/dev/null)" ]; }   # zombies count as gone

pid_alive() {
  [ -s "$D/smtp.pid" ] || return 1
  tr '\0' ' ' < "/proc/$(cat "$D/smtp.pid")/cmdline" 2>/dev/null | grep -qF "$D/maildir"
}

banner() ( # banner PORT -> 0 once the server greets with 220 (subshell: the fd closes with it)
  line=""
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  read -r -t 1 line <&3 || true
  printf 'QUIT\r\n' >&3 || true
  [[ $line == 220* ]]
)

start() {
  local t0 port pid attempt ok=0 tls=()
  t0=$(now_ms)
  ensure_pkgs python3-aiosmtpd
  if pid_alive; then echo "already running (pid $(cat "$D/smtp.pid"))"; cat "$D/smtp.env"; return 0; fi
  mkdir -p "$D/maildir/tmp" "$D/maildir/new" "$D/maildir/cur"   # a bare existing dir would not be made a Maildir
  if [ -n "${SMTP_TLS_CERT:-}" ]; then tls=(--tlscert "$SMTP_TLS_CERT" --tlskey "${SMTP_TLS_KEY:?SMTP_TLS_KEY}"); fi
  for attempt in 1 2 3; do
    port=$(free_port)
    "$PY" -m aiosmtpd -n -l "127.0.0.1:$port" "${tls[@]}" -c aiosmtpd.handlers.Mailbox "$D/maildir" \
      >"$D/smtp.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" > "$D/smtp.pid"
    for _ in $(seq 1 250); do   # up to 5 s
      running "$pid" || break
      if banner "$port" 2>/dev/null; then ok=1; break; fi
      sleep 0.02
    done
    [ "$ok" -eq 1 ] && break
    kill "$pid" 2>/dev/null || true
    echo "smtp sink did not come up (attempt $attempt):" >&2; tail -3 "$D/smtp.log" >&2
    [ "$attempt" -lt 3 ] || die "giving up"
  done
  cat > "$D/smtp.env" <<ENV
SMTP_HOST=127.0.0.1
SMTP_PORT=$port
SMTP_MAILDIR=$D/maildir
SMTP_STARTTLS=$([ ${#tls[@]} -gt 0 ] && echo required || echo no)
SMTP_PID=$pid
ENV
  echo "smtp sink pid=$pid smtp://127.0.0.1:$port maildir=$D/maildir starttls=$([ ${#tls[@]} -gt 0 ] && echo required || echo no) ready_ms=$(( $(now_ms) - t0 ))"
  cat "$D/smtp.env"
}

stop() {
  if ! pid_alive; then echo "not running"; rm -f "$D/smtp.pid"; return 0; fi
  local pid; pid=$(cat "$D/smtp.pid")
  kill "$pid"
  for _ in $(seq 1 250); do running "$pid" || break; sleep 0.02; done
  if running "$pid"; then kill -9 "$pid"; echo "smtp sink $pid killed with SIGKILL"; fi
  rm -f "$D/smtp.pid"
  echo "smtp sink $pid stopped"
}

[ $# -ge 2 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
if [ "$1" = start ]; then mkdir -p "$2"
elif [ ! -d "$2" ]; then [ "$1" = stop ] && { echo "not running (no $2)"; exit 0; }; die "no directory $2"; fi
D=$(cd "$2" && pwd)
case "$1" in
  start) start ;;
  stop)  stop ;;
  *)     die "unknown command $1" ;;
esac
