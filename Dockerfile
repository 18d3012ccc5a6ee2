# sts-pilot: the controller and the in-pod pilot (one binary, subcommands).
# The image runs one bundled file, dist/sts-pilot.mjs (image/bundle.ts): 40 MiB
# less memory per process than running the TypeScript sources (docs/decisions.md,
# "One bundled file"). The sources stay in the image too, so that a pilot command
# line written for them (app/cmd/sts-pilot.ts) keeps working. image/build.sh
# builds the same image without a container engine (same files under /app, same
# entrypoint); the image test compares the two by what this file copies, so keep
# them in step.
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24.21.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY cmd ./cmd
COPY lib ./lib
COPY hooks ./hooks
COPY image/bundle.ts ./image/
RUN node image/bundle.ts

FROM node:24.21.0-bookworm-slim
# tini as PID 1: it reaps every orphan (Node cannot), and passes signals on.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY LICENSE ./
COPY cmd ./cmd
COPY lib ./lib
COPY hooks ./hooks
COPY --from=build /app/dist ./dist
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini-static", "--", "/usr/local/bin/node", "/app/dist/sts-pilot.mjs"]
CMD ["controller"]
