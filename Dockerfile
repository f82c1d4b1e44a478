# syntax=docker/dockerfile:1

# Bun release the service is developed and tested on.
ARG BUN_VERSION=1.4.5

# ---- deps: production node_modules only, exactly as bun.lock pins them ----
FROM oven/bun:${BUN_VERSION}-slim AS deps
WORKDIR /app
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production

# ---- runtime ----
FROM oven/bun:${BUN_VERSION}-slim AS runtime
WORKDIR /app

ENV NODE_ENV=production \
	HOST=0.0.0.0 \
	PORT=3000 \
	STORAGE_DIR=/app/storage

# Code and files stay root-owned: the unprivileged `bun` user of the base image
# can read them, never change them. The service only reads STORAGE_DIR (compose
# mounts it read-only).
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
RUN mkdir -p /app/storage

USER bun

EXPOSE 3000

# Slim images have no curl: probe /health with bun itself.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
	CMD ["bun", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health', { signal: AbortSignal.timeout(3000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# SIGTERM drains in-flight downloads for SHUTDOWN_GRACE_S before exiting.
STOPSIGNAL SIGTERM
CMD ["bun", "src/index.ts"]
