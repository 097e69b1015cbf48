# The wisp image: one binary for every role (`wisp controller`, `wisp node`,
# `wisp up`, ...), as deploy/kubernetes/ runs it.
#
#   docker build -t ghcr.io/wisp-dev/wisp:0.1.0 .
#
# Build stage: the pinned toolchain (rust-toolchain.toml) on Debian 12, with the registry and
# target directory in BuildKit cache mounts so a rebuild recompiles only what changed.
FROM rust:1.95.0-bookworm AS build
# The image's toolchain is the pinned one; naming it keeps rustup from fetching the rustfmt and
# clippy components rust-toolchain.toml lists for development.
ENV RUSTUP_TOOLCHAIN=1.95.0
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p wisp \
    && install -D -m 0755 target/release/wisp /out/wisp

# Final stage: distroless cc (glibc, libgcc_s, CA certificates, tzdata; no shell, no package
# manager) as its `nonroot` user (65532). wisp links glibc and libgcc_s dynamically, so the
# static image would not run it; Debian 12 here matches the build stage's glibc. Everything
# else is in the binary (rustls with ring, SQLite bundled), so nothing more is needed.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/wisp /usr/local/bin/wisp
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/wisp"]
CMD ["--help"]
