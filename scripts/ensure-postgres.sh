#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 for the test suite: start the local cluster when it is
# installed but stopped; fail loudly (never skip) when it cannot be reached.
set -u
ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || \
  python3 -c "import socket,sys; s=socket.socket(); s.settimeout(2); sys.exit(s.connect_ex(('127.0.0.1',5432)))"; }
if ready; then exit 0; fi
if command -v pg_lsclusters >/dev/null 2>&1; then
  version=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1{print $1}')
  if [ -n "${version:-}" ]; then
    echo "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
  fi
fi
echo "ERROR: PostgreSQL is not reachable at 127.0.0.1:5432; the suite must run on PostgreSQL too." >&2
exit 1
