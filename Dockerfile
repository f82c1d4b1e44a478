# syntax=docker/dockerfile:1

# ---- deps: production node_modules only, exactly as bun.lock pins them ----
FROM oven/bun:1.4-slim AS deps
WORKDIR /app
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production

# ---- runtime ----
FROM oven/bun:1.4-slim AS runtime
WORKDIR /app

ENV NODE_ENV=production \
	PORT=3000 \
	STORAGE_DIR=/app/storage

# Code stays root-owned (read-only to the service); only the storage dir is
# writable by the unprivileged `bun` user the base image provides.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
RUN mkdir -p /app/storage && chown bun:bun /app/storage

USER bun

EXPOSE 3000

# Slim images have no curl: probe /health with bun itself.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
	CMD ["bun", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health', { signal: AbortSignal.timeout(3000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The service drains in-flight downloads on SIGTERM (SHUTDOWN_GRACE_S).
STOPSIGNAL SIGTERM
CMD ["bun", "src/index.ts"]
