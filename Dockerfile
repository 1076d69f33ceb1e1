# Kelemetry for Rust: a two-stage build. The builder compiles the release binary
# against Debian's RocksDB (librocksdb-dev 7.8, as the project builds everywhere);
# the runtime image is Debian slim with only the shared libraries the binary links
# (snappy and the C++ runtime: RocksDB and its other compression libraries are linked
# statically) and CA certificates, and runs as a non-root user.
FROM rust:1.89-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librocksdb-dev libclang-14-dev protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kelemetry --bin kelemetry \
 && cp target/release/kelemetry /kelemetry

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libsnappy1v5 libstdc++6 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 kelemetry \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/kelemetry kelemetry \
 && mkdir -p /var/lib/kelemetry \
 && chown kelemetry:kelemetry /var/lib/kelemetry
COPY --from=build /kelemetry /usr/local/bin/kelemetry
USER 10001:10001
VOLUME /var/lib/kelemetry
EXPOSE 8080 16686 17271 9090 7070
ENTRYPOINT ["/usr/local/bin/kelemetry"]
CMD ["serve", "--data-dir=/var/lib/kelemetry"]
