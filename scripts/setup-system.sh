#!/usr/bin/env bash
# Installs (as root, with apt) or names (otherwise) the system packages wfops and its sandbox need.
# Idempotent: does nothing when everything is present.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

pg_bindir() {
  if have pg_config && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  if [ -x /usr/lib/postgresql/15/bin/initdb ]; then echo /usr/lib/postgresql/15/bin; return; fi
  echo ""
}

have python3.11 || need_apt+=(python3.11 python3.11-venv)
[ -n "$(pg_bindir)" ] || need_apt+=(postgresql-15 postgresql-client-15)
have node || need_apt+=(nodejs)
have npm || need_apt+=(npm)
have unshare || need_apt+=(util-linux)
have sshd || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
have ssh || need_apt+=(openssh-client)
have systemd-analyze || need_apt+=(systemd)
have sudo || need_apt+=(sudo)
# The host-side modules run on the system Python (the SSH scenario's "Hetzner host" is this machine).
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import psycopg2' 2>/dev/null || need_apt+=(python3-psycopg2)
have rclone || need_apt+=(rclone)

if [ ${#need_apt[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
  echo "wfops setup: missing system packages; install them with: sudo apt-get install -y ${need_apt[*]}" >&2
  exit 1
fi

echo "wfops setup: installing ${need_apt[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
