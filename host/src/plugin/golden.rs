//! A loaded component as a golden-case mapper ([`periscope_golden::CaseMapper`]): what
//! the host's golden test and `periscope plugins check` run, with the same runner as
//! the SDK's native unit tests.

use periscope_golden::{CaseMapper, SnapshotPolicy};

use super::{CallError, Plugin};

impl CaseMapper for Plugin {
    fn fields(&self) -> Vec<String> {
        self.info().fields.declared().to_vec()
    }

    fn snapshot(&self) -> Option<SnapshotPolicy> {
        self.info().snapshot.clone()
    }

    fn map(&self, objects: &[String]) -> Vec<Result<String, String>> {
        self.to_dto_batch(objects, periscope_golden::golden_now())
            .into_iter()
            .map(|result| {
                result.map_err(|error| match error {
                    // The plugin's own words, as the SDK's native runner reports them.
                    CallError::Rejected { message, .. } => message,
                    fault => chain(&fault),
                })
            })
            .collect()
    }
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
