# palisade container image.
#
#   docker build -t palisade .
#   docker run --rm -p 127.0.0.1:9000:9000 \
#     -v palisade-data:/var/lib/palisade \
#     -v "$PWD/keys:/etc/palisade/keys:ro" palisade
#
# The image holds the binary only: no keys, keystores, passwords, PINs or database
# credentials. Mount key configs at /etc/palisade/keys and keep the data directory on a
# volume. See docs/deployment.md.

# ---------------------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

WORKDIR /build

# Only what `cargo build` reads:
# - Cargo.toml and Cargo.lock (--locked: the build fails rather than change the lock file);
# - src/ (including src/chain/eth2/networks/*.yaml, embedded with include_str!);
# - openapi/ (the OpenAPI documents, embedded with include_str! and served at /openapi.json);
# - migrations/ (sqlx::migrate! embeds migrations/sqlite and migrations/postgres at
#   compile time);
# - benches/ (Cargo.toml declares [[bench]] burst, so benches/burst.rs must exist for the
#   manifest to load, even though benches are not built here).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY openapi ./openapi
COPY benches ./benches

RUN cargo build --release --locked --bin palisade

# ---------------------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates for outbound TLS done by vendor libraries; curl for HEALTHCHECK only.
# No PKCS#11 module is installed (no SoftHSM2). To use an HSM, build a derived image that
# adds your vendor's library (for example AWS CloudHSM's libcloudhsm_pkcs11.so) and its
# configuration; see docs/hsm.md.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# Dedicated unprivileged user with a fixed uid/gid, so that file ownership on mounted
# volumes and bind mounts is predictable (chown -R 10001:10001 keys/ on the host).
RUN groupadd --system --gid 10001 palisade \
 && useradd --system --uid 10001 --gid palisade \
      --home-dir /var/lib/palisade --no-create-home \
      --shell /usr/sbin/nologin palisade \
 && install -d -m 0700 -o palisade -g palisade /var/lib/palisade \
 && install -d -m 0750 -o root -g palisade /etc/palisade \
 && install -d -m 0700 -o palisade -g palisade /etc/palisade/keys

COPY --from=builder /build/target/release/palisade /usr/local/bin/palisade

USER palisade:palisade
WORKDIR /var/lib/palisade

# palisade's own files (the default SQLite slashing-protection database lives here).
# Always mount a named volume or a host directory here: losing this directory loses the
# signing history when SQLite is used.
VOLUME ["/var/lib/palisade"]

# 9000: eth2 (Web3Signer-compatible) API. 6732: Tezos (octez-signer-compatible) API,
# which only listens when Tezos keys are configured or a --tezos-http-listen-* flag is given.
EXPOSE 9000 6732

# /upcheck answers 200 once the eth2 listener is up. Adjust the port if you change
# --http-listen-port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:9000/upcheck"]

ENTRYPOINT ["palisade"]
CMD ["serve", "--http-listen-host", "0.0.0.0", "--data-dir", "/var/lib/palisade", "--key-config-path", "/etc/palisade/keys"]
