# syntax=docker/dockerfile:1

# The service image: built in one stage with the dev dependencies (TypeScript), run from a
# slim stage with the production dependencies only, as an unprivileged user.
#   docker build -t image-batch-service .
#   docker run -p 127.0.0.1:8000:8000 --stop-timeout 30 image-batch-service

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Tools for better-sqlite3's native addon, compiled from source when no prebuilt binary can
# be downloaded for this platform. sharp needs none: its prebuilt linux-x64 (glibc) binaries
# come as npm packages and run on Debian bookworm.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Scripts off: the package's own prepare (the build) needs the sources, copied afterwards so
# that changing them does not reinstall every dependency. better-sqlite3's install script
# is the one that matters; it runs on its own.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# GLIBC_TUNABLES: the malloc settings npm start gives the service (see package.json and the
# README's Performance section): freed image buffers are kept for the next image instead
# of being handed back to the kernel and faulted in again.
ENV NODE_ENV=production \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=8388608:glibc.malloc.trim_threshold=16777216 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/app/data \
    IMAGES_DIR=/app/processed_images \
    RESULTS_DIR=/app/processed_results
WORKDIR /app
# Code and dependencies stay owned by root, so the service cannot rewrite them; it writes
# only to its three data directories.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /app/data /app/processed_images /app/processed_results \
 && chown node:node /app/data /app/processed_images /app/processed_results
# The node images' unprivileged user "node", by number so that a runtime enforcing a
# non-root user (Kubernetes runAsNonRoot) can check it.
USER 1000:1000
EXPOSE 8000
VOLUME ["/app/data", "/app/processed_images", "/app/processed_results"]
# The image has no curl; Node's fetch probes the route load balancers use.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# As `npm start`, without npm in between, so SIGTERM reaches the service (which lets the
# images in flight finish for up to 25 s: give `docker stop` 30).
CMD ["node", "dist/main.cjs"]
