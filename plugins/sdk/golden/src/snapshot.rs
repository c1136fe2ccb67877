//! Snapshot order and cap: what a plugin's [`SnapshotPolicy`] asks of a list of DTOs
//! (spec 3.5: events newest first by `last`, capped at 500; the zero time last). The
//! hub and the golden runner both call these functions.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::SnapshotPolicy;

/// Orders and caps `items` per `policy`; `dto` gives each item's DTO JSON. Without a
/// policy, items keep their list order. Items whose sort field is absent, unparsable
/// or the zero time sort last in either direction.
pub fn apply<T>(policy: Option<&SnapshotPolicy>, items: Vec<T>, dto: impl Fn(&T) -> &str) -> Vec<T> {
    let Some(policy) = policy else {
        return items;
    };
    let keyed = items
        .into_iter()
        .map(|item| (sort_key(dto(&item), &policy.sort_field), item))
        .collect();
    apply_keyed(policy, keyed)
}

/// Like [`apply`], for items whose sort keys were computed beforehand (the hub keeps
/// each DTO's key beside it, so a snapshot never re-parses its DTOs).
pub fn apply_keyed<T>(policy: &SnapshotPolicy, mut keyed: Vec<(Option<OffsetDateTime>, T)>) -> Vec<T> {
    keyed.sort_by(|(a, _), (b, _)| match (a, b) {
        (Some(a), Some(b)) if policy.descending => b.cmp(a),
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    if let Some(cap) = policy.cap {
        keyed.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
    }
    keyed.into_iter().map(|(_, item)| item).collect()
}

/// The timestamp in top-level key `field` of a DTO; `None` for absent or zero.
pub fn sort_key(dto: &str, field: &str) -> Option<OffsetDateTime> {
    let value: serde_json::Value = serde_json::from_str(dto).ok()?;
    let at = OffsetDateTime::parse(value.get(field)?.as_str()?, &Rfc3339).ok()?;
    (at.year() > 1).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(descending: bool, cap: Option<u32>) -> SnapshotPolicy {
        SnapshotPolicy {
            sort_field: "last".into(),
            descending,
            cap,
        }
    }

    fn dtos(lasts: &[&str]) -> Vec<String> {
        lasts.iter().map(|l| format!(r#"{{"last":"{l}"}}"#)).collect()
    }

    #[test]
    fn newest_first_with_zero_time_last() {
        let items = dtos(&[
            "2026-05-01T10:00:00Z",
            "0001-01-01T00:00:00Z",
            "2026-05-01T12:00:00Z",
            "2026-05-01T11:00:00.5Z",
        ]);
        let sorted = apply(Some(&policy(true, None)), items, |s| s.as_str());
        assert_eq!(
            sorted,
            dtos(&[
                "2026-05-01T12:00:00Z",
                "2026-05-01T11:00:00.5Z",
                "2026-05-01T10:00:00Z",
                "0001-01-01T00:00:00Z"
            ])
        );
    }

    #[test]
    fn cap_keeps_the_first_items_after_sorting() {
        let items = dtos(&["2026-05-01T10:00:00Z", "2026-05-01T12:00:00Z", "2026-05-01T11:00:00Z"]);
        let sorted = apply(Some(&policy(true, Some(2))), items, |s| s.as_str());
        assert_eq!(sorted, dtos(&["2026-05-01T12:00:00Z", "2026-05-01T11:00:00Z"]));
    }

    #[test]
    fn no_policy_keeps_list_order() {
        let items = dtos(&["b", "a"]);
        assert_eq!(apply(None, items.clone(), |s| s.as_str()), items);
    }
}
