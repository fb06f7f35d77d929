# Parley gateway image. Node 24 runs the TypeScript sources directly (type stripping), so there is
# no build step: the image installs with the same `npm ci` as CI and starts with the same command
# as `npm start` (test/deploy.test.ts keeps the three in step).
FROM node:24-slim

WORKDIR /app
ENV NODE_ENV=production

# Dependencies first, so code changes reuse this layer. Dev dependencies (the pinned `node`
# package, TypeScript, test tools) are not needed at runtime: the image's Node 24 runs Parley.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY bin ./bin
COPY src ./src
COPY parley.example.yaml README.md ./

# SQLite (the default store) writes under ./data; run as the image's unprivileged user.
RUN mkdir -p /app/data && chown node:node /app/data
USER node

# Without a parley.yaml Parley reads its settings from the environment; mount one at
# /app/parley.yaml (see docker-compose.yml). Listening beyond loopback needs `auth` in it.
EXPOSE 12000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:12000/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Node is PID 1 and handles SIGTERM itself: it stops accepting, lets in-flight streams finish up
# to limits.shutdown_timeout, records the rest as incomplete, then exits.
CMD ["node", "bin/parley.js", "serve"]
