# syntax=docker/dockerfile:1
# periscope's container image: the `periscope` release binary (no debug info; its
# symbols kept, so a panic's backtrace names functions), with the bundled kind plugins
# embedded in it (host/build.rs), on a distroless base as a non-root user.
#
#   docker build -t periscope .
#   docker run --rm -p 8080:8080 periscope serve --listen 0.0.0.0:8080   # the demo cluster
#
# The helm chart (charts/periscope) runs it with a read-only root filesystem; the only
# writable paths are emptyDirs: the plugin cache at /var/cache/periscope and /tmp.

# --- build: rust-toolchain.toml pins the toolchain and the wasm32-wasip2 target ---
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY rust-toolchain.toml ./
# Toolchain, components and the guest target in their own layer: the image's default
# toolchain can already be the pinned one without the wasm target, which cargo would
# otherwise download inside every `cargo build`.
RUN rustup toolchain install \
    && rustup target add wasm32-wasip2 \
    && rustup target list --installed | grep -qx wasm32-wasip2
COPY . .
# The cache mounts keep the registry and target dir across builds; the binary is copied
# out of the target dir, which the mount would otherwise hide from the next stage. The
# release profile already drops debug info (`strip = "debuginfo"`); no further `strip`,
# which would remove the symbols backtraces use.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p periscope \
    && install -D -m 0755 target/release/periscope /out/periscope \
    && mkdir -p /out/cache/periscope /out/tmp

# --- run: glibc and libgcc only (distroless cc), uid/gid 65532 ---
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/periscope /usr/local/bin/periscope
COPY --from=build --chown=65532:65532 /out/cache /var/cache
COPY --from=build --chown=65532:65532 --chmod=1777 /out/tmp /tmp
# The plugin cache: $XDG_CACHE_HOME/periscope/components (mount an emptyDir there).
ENV XDG_CACHE_HOME=/var/cache
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/periscope"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
