# Mailproof runs its TypeScript sources directly (tsx, no build step), so the image is the
# sources plus production dependencies. Build: docker build -t mailproof .
# Run: docker run --env-file mailproof.env -p 3000:3000 mailproof            (web + worker)
#      docker run --env-file mailproof.env mailproof worker                  (a worker alone)
#      docker run --env-file mailproof.env mailproof migrate                 (before a release)

FROM node:20-slim AS deps
WORKDIR /app
# better-sqlite3 and @node-rs/argon2 install prebuilt binaries; the compiler is only the fallback
# for a platform without one, and stays in this stage.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM node:20-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
# On SIGTERM the process stops accepting, finishes requests and sends in flight, and exits 0
# (within 30 s). Give it that long: docker stop -t 35, or stop_grace_period: 35s in Compose.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/mailproof.js"]
# `start` migrates, then serves with the outbox worker in the same process. For several web
# instances, run `serve` and `worker` containers instead, and `migrate` once per release.
CMD ["start"]
