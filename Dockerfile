# Multi-stage build: compile against the system libpq (with TLS), run as non-root.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p userd --no-default-features \
 && strip target/release/userd

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/userd --shell /usr/sbin/nologin userd \
 && mkdir -p /var/lib/userd/secrets /etc/userd \
 && chown -R userd:userd /var/lib/userd \
 && chmod 0700 /var/lib/userd/secrets
COPY --from=build /src/target/release/userd /usr/local/bin/userd
COPY config /etc/userd/config
ENV USERD_CONFIG_DIR=/etc/userd/config \
    USERD__SERVER__HOST=0.0.0.0 \
    USERD__DATABASE__URL=sqlite:///var/lib/userd/userd.db \
    USERD__BOOTSTRAP__ADMIN_PAT_PATH=/var/lib/userd/secrets/admin.pat \
    USERD__LOG__FORMAT=json
USER userd
WORKDIR /var/lib/userd
# REST, then gRPC, gRPC-web and Connect.
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/userd"]
CMD ["serve"]
