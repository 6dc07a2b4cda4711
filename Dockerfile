# One image with the three binaries; docker-compose.yml picks one per service.
# Templates and static files are compiled into the binaries.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mock-idp -p api -p bff

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app app \
 && mkdir -p /app/data && chown app /app/data
COPY --from=build /src/target/release/mock-idp /src/target/release/api /src/target/release/bff /usr/local/bin/
WORKDIR /app
USER app
VOLUME /app/data
