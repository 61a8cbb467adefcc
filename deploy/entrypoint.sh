#!/bin/sh
# The image's entry point: `serve` (the default) runs the app named by SERVICE, `migrate`
# brings its database to the migration head, anything else runs as given (the demo loader).
#
# Secrets may come from files: NAME_FILE=/run/secrets/x sets NAME to the file's content, for
# the settings that hold a secret value (…_DATABASE_URL, …_SECRET_KEY, …_BOOTSTRAP_ADMIN_KEY,
# …_REDIS_URL, PGPASSWORD). Settings that already name a file (…_PRIVATE_KEY_FILE) are kept.
set -eu

for name in $(env | sed -n 's/^\([A-Z0-9_]*\)_FILE=.*/\1/p'); do
  case "$name" in
    *_DATABASE_URL | *_SECRET_KEY | *_BOOTSTRAP_ADMIN_KEY | *_REDIS_URL | PGPASSWORD) ;;
    *) continue ;;
  esac
  eval "path=\${${name}_FILE}"
  value=$(cat "$path")
  export "$name=$value"
  unset "${name}_FILE"
done

case "${1:-serve}" in
  serve)
    : "${SERVICE:?set SERVICE to brand_registry, certification, inspection, assessment or gateway}"
    # kit.serve: uvicorn with the request head bounded (431 past it). Only the gateway meets
    # callers, and it believes X-Forwarded-* only from GATEWAY_TRUSTED_PROXIES (its ingress).
    trusted=""
    if [ "$SERVICE" = gateway ]; then trusted=${GATEWAY_TRUSTED_PROXIES:-}; fi
    exec python -m kit.serve "${SERVICE}.app:build_app" --host 0.0.0.0 --port 8000 \
      --no-access-log --trusted-proxies "$trusted"
    ;;
  migrate)
    service=${2:-${SERVICE:?set SERVICE or name the service: migrate brand_registry}}
    prefix=$(echo "$service" | tr '[:lower:]' '[:upper:]')
    eval "url=\${${prefix}_DATABASE_URL:-}"
    # The database may still be starting: wait (cheaply) until its port answers, then migrate,
    # trying again on failure until QRP_MIGRATE_WAIT_SECONDS have passed.
    wait=${QRP_MIGRATE_WAIT_SECONDS:-180}
    python - "$url" "$wait" <<'PY'
import socket, sys, time
from urllib.parse import urlsplit

url, wait = sys.argv[1], float(sys.argv[2])
if url.startswith("postgresql"):
    where = urlsplit(url)
    deadline = time.monotonic() + wait
    while True:
        try:
            socket.create_connection((where.hostname, where.port or 5432), timeout=2).close()
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                sys.exit(f"database at {where.hostname}:{where.port or 5432} unreachable: {exc}")
            time.sleep(0.5)
PY
    deadline=$(($(date +%s) + wait))
    until python -m kit.migrate "$service"; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "migrate $service: giving up" >&2
        exit 1
      fi
      sleep 2
    done
    ;;
  *)
    exec "$@"
    ;;
esac
