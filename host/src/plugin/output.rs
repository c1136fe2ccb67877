//! A write-only `stderr` (and `stdout`) for plugins, so a guest's panic message reaches
//! the host: the SDK's panic hook writes it to stderr before the panic traps.
//!
//! Only what std's stdio on `wasm32-wasip2` calls is linked: `wasi:cli/stderr` and
//! `wasi:cli/stdout` hand out one `output-stream`, `wasi:io/streams` writes to it, and
//! `wasi:io/poll` says its pollable is always ready (std 1.95 waits on it first).
//! Every write lands in the calling instance's store ([`Captured`]), capped at
//! [`CAP`] bytes and cleared before each call; nothing reaches the host's own stderr,
//! and a plugin gains no channel out of the process. Every other import is still a trap
//! (`define_unknown_imports_as_traps`), so a component built by an older SDK, which
//! never writes, behaves as before: this is an optional import, not a contract change.

use wasmtime::component::{Component, Linker, Resource, ResourceType, Val};

use super::instance::StoreState;

/// Most bytes kept per call; a panic message is far shorter.
pub(super) const CAP: usize = 8 * 1024;

/// What a guest wrote during one call, capped.
#[derive(Debug, Default)]
pub(super) struct Captured {
    bytes: Vec<u8>,
}

impl Captured {
    fn write(&mut self, bytes: &[u8]) {
        let room = CAP.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Forgets what the previous call wrote.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
    }

    /// The text written, trimmed; `None` when nothing was.
    pub(super) fn text(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}

/// The host side of the `output-stream` resource handed to guests.
struct GuestOutput;

/// The host side of the `pollable` an output stream's `subscribe` returns: always
/// ready, since a write never waits.
struct GuestPollable;

/// Links the output streams of the WASI versions `component` imports.
pub(super) fn link(linker: &mut Linker<StoreState>, component: &Component) -> wasmtime::Result<()> {
    let engine = component.engine().clone();
    let names: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    for name in names {
        if name.starts_with("wasi:io/streams@") {
            link_streams(linker, &name)?;
        } else if name.starts_with("wasi:io/poll@") {
            link_poll(linker, &name)?;
        } else if name.starts_with("wasi:cli/stderr@") {
            link_getter(linker, &name, "get-stderr")?;
        } else if name.starts_with("wasi:cli/stdout@") {
            link_getter(linker, &name, "get-stdout")?;
        }
    }
    Ok(())
}

fn output_stream_type(instance: &mut wasmtime::component::LinkerInstance<'_, StoreState>) -> wasmtime::Result<()> {
    instance.resource("output-stream", ResourceType::host::<GuestOutput>(), |_, _| Ok(()))
}

fn link_getter(linker: &mut Linker<StoreState>, interface: &str, getter: &str) -> wasmtime::Result<()> {
    let mut instance = linker.instance(interface)?;
    output_stream_type(&mut instance)?;
    instance.func_wrap(getter, |_store, (): ()| Ok((Resource::<GuestOutput>::new_own(0),)))
}

fn pollable_type(instance: &mut wasmtime::component::LinkerInstance<'_, StoreState>) -> wasmtime::Result<()> {
    instance.resource("pollable", ResourceType::host::<GuestPollable>(), |_, _| Ok(()))
}

/// `wasi:io/poll`: std waits on the stream's pollable before writing; it is always
/// ready.
fn link_poll(linker: &mut Linker<StoreState>, interface: &str) -> wasmtime::Result<()> {
    let mut instance = linker.instance(interface)?;
    pollable_type(&mut instance)?;
    instance.func_wrap(
        "[method]pollable.block",
        |_store, (_this,): (Resource<GuestPollable>,)| Ok(()),
    )?;
    instance.func_wrap(
        "[method]pollable.ready",
        |_store, (_this,): (Resource<GuestPollable>,)| Ok((true,)),
    )?;
    instance.func_wrap("poll", |_store, (pollables,): (Vec<Resource<GuestPollable>>,)| {
        let ready: Vec<u32> = (0..u32::try_from(pollables.len()).unwrap_or(u32::MAX)).collect();
        Ok((ready,))
    })
}

fn link_streams(linker: &mut Linker<StoreState>, interface: &str) -> wasmtime::Result<()> {
    let mut instance = linker.instance(interface)?;
    output_stream_type(&mut instance)?;
    pollable_type(&mut instance)?;
    instance.func_wrap(
        "[method]output-stream.subscribe",
        |_store, (_this,): (Resource<GuestOutput>,)| Ok((Resource::<GuestPollable>::new_own(0),)),
    )?;
    // `result<u64, stream-error>`: room for any write.
    instance.func_new(
        "[method]output-stream.check-write",
        |mut store, _ty, params, results| {
            end_borrow(&mut store, params)?;
            results[0] = Val::Result(Ok(Some(Box::new(Val::U64(CAP as u64)))));
            Ok(())
        },
    )?;
    for method in ["write", "blocking-write-and-flush"] {
        instance.func_new(
            &format!("[method]output-stream.{method}"),
            |mut store, _ty, params, results| {
                end_borrow(&mut store, params)?;
                if let Some(Val::List(bytes)) = params.get(1) {
                    let bytes: Vec<u8> = bytes
                        .iter()
                        .filter_map(|b| match b {
                            Val::U8(b) => Some(*b),
                            _ => None,
                        })
                        .collect();
                    store.data_mut().output.write(&bytes);
                }
                results[0] = Val::Result(Ok(None));
                Ok(())
            },
        )?;
    }
    for method in ["flush", "blocking-flush"] {
        instance.func_new(
            &format!("[method]output-stream.{method}"),
            |mut store, _ty, params, results| {
                end_borrow(&mut store, params)?;
                results[0] = Val::Result(Ok(None));
                Ok(())
            },
        )?;
    }
    Ok(())
}

/// Ends the `self` borrow a dynamic method receives: every `ResourceAny` must be
/// dropped, or the guest's call fails with borrows outstanding.
fn end_borrow(store: &mut wasmtime::StoreContextMut<'_, StoreState>, params: &[Val]) -> wasmtime::Result<()> {
    match params.first() {
        Some(Val::Resource(this)) => this.resource_drop(store),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_capped_and_trimmed() {
        let mut captured = Captured::default();
        assert_eq!(captured.text(), None);
        captured.write(b"  panicked at src/lib.rs:1:1:\nboom\n");
        assert_eq!(captured.text().as_deref(), Some("panicked at src/lib.rs:1:1:\nboom"));
        captured.write(&vec![b'x'; CAP * 2]);
        assert!(captured.bytes.len() == CAP);
        captured.clear();
        assert_eq!(captured.text(), None);
    }
}
