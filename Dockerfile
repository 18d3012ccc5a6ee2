# sts-pilot: the controller and the in-pod pilot (one binary, subcommands).
# TypeScript runs as-is on Node 24 (type stripping): no build stage, only the
# production dependencies.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY cmd ./cmd
COPY lib ./lib
COPY hooks ./hooks
USER node
ENTRYPOINT ["node", "--disable-warning=ExperimentalWarning", "/app/cmd/sts-pilot.ts"]
CMD ["controller"]
