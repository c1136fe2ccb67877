//! Golden-file checks for a [`Mapper`], run natively from a plugin's unit tests.
//!
//! Each case is `golden/<case>.k8s.json` (a raw object as the apiserver returns it, or
//! a `…List`) beside `golden/<case>.dto.json` (the expected DTO, or the snapshot
//! array). The runner is `periscope-golden`'s, the one the host's golden test and
//! `periscope plugins check` use: objects are stripped exactly as the host strips them
//! (only [`Object::FIELDS`] and `apiVersion`/`kind`/`metadata` cross), cases map at
//! [`GOLDEN_NOW`], and Lists are ordered and capped by the hub's snapshot code. Set
//! `PERISCOPE_BLESS=1` to write the actual output as the new expectation.

use std::path::Path;

pub use periscope_golden::{CaseMapper, GOLDEN_NOW, Problem, Report, SnapshotPolicy, run, strip};

use crate::{Context, Mapper, Object, Timestamp};

/// A [`Mapper`] run natively, as a [`CaseMapper`].
#[derive(Debug)]
pub struct Native<M>(std::marker::PhantomData<M>);

impl<M> Default for Native<M> {
    fn default() -> Self {
        Native(std::marker::PhantomData)
    }
}

impl<M: Mapper> CaseMapper for Native<M> {
    fn fields(&self) -> Vec<String> {
        M::FIELDS.iter().map(|f| (*f).to_string()).collect()
    }

    fn snapshot(&self) -> Option<SnapshotPolicy> {
        M::info().snapshot.map(|s| SnapshotPolicy {
            sort_field: s.sort_field.to_string(),
            descending: s.descending,
            cap: s.cap,
        })
    }

    fn map(&self, objects: &[String]) -> Vec<Result<String, String>> {
        let ctx = Context {
            now: Timestamp::from_unix(periscope_golden::golden_now().unix_timestamp(), 0),
        };
        objects
            .iter()
            .map(|object| M::map_json(object, &ctx).map_err(|e| e.to_string()))
            .collect()
    }
}

/// Panics unless [`Mapper::FIELDS`] parse and, when they are not the default, name
/// every top-level key [`Mapper::Object`] reads (a key added to the struct but not to
/// the paths would reach the mapping as absent). `apiVersion`, `kind` and `metadata`
/// always cross, so they need no path.
pub fn check_fields<M: Mapper>() {
    if let Err(error) = periscope_golden::Fields::parse(M::FIELDS) {
        panic!("Mapper::FIELDS: {error}");
    }
    if M::FIELDS.is_empty() {
        return;
    }
    let first = |path: &str| path.split('.').next().map(|key| key.trim_end_matches("[]").to_string());
    let declared: Vec<String> = M::FIELDS.iter().filter_map(|path| first(path)).collect();
    let missing: Vec<&str> = <M::Object as Object>::FIELDS
        .iter()
        .copied()
        .filter(|key| !periscope_golden::ALWAYS_KEPT.contains(key) && !declared.iter().any(|d| d == key))
        .collect();
    assert!(
        missing.is_empty(),
        "Mapper::FIELDS name no path under {missing:?}, which the Object reads: add them (or a path under them)"
    );
}

/// Maps every case in `dir` and panics with a readable diff listing each problem;
/// panics too when `dir` holds no case at all.
pub fn check<M: Mapper>(dir: &Path) {
    periscope_golden::check(dir, &Native::<M>::default(), "cargo test -p <plugin crate>");
}
