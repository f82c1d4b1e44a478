#!/bin/sh
# Entrypoint of the compose `prometheus` service: Prometheus reads a bearer token
# only from a file, so write METRICS_TOKEN where prometheus.yml's credentials_file
# points (a tmpfs: never on disk), then start Prometheus with the service's command.
set -eu

if [ -z "${METRICS_TOKEN:-}" ]; then
	echo 'prometheus: METRICS_TOKEN is empty: set it in .env (download-gate then requires it on /metrics)' >&2
	exit 1
fi

umask 077
printf '%s' "$METRICS_TOKEN" >/etc/prometheus/secrets/metrics_token
exec /bin/prometheus "$@"
