//! Status shapes many kinds share: conditions and load-balancer ingress points.

use serde::Deserialize;

use crate::nullable;

/// One entry of `status.conditions[]`: only what summaries read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Condition {
    /// `type` (`Ready`, `Complete`, `AbleToScale`…).
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    /// `status`: `"True"`, `"False"` or `"Unknown"`.
    #[serde(deserialize_with = "nullable")]
    pub status: String,
}

impl Condition {
    /// True when some condition of type `kind` has status `"True"`.
    pub fn is_true(conditions: &[Condition], kind: &str) -> bool {
        conditions.iter().any(|c| c.kind == kind && c.status == "True")
    }
}

/// `status.loadBalancer` of Services and Ingresses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LoadBalancerStatus {
    /// The ingress points, in order.
    #[serde(deserialize_with = "nullable")]
    pub ingress: Vec<LoadBalancerIngress>,
}

/// One load-balancer ingress point.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LoadBalancerIngress {
    /// Its IP address, if any.
    #[serde(deserialize_with = "nullable")]
    pub ip: String,
    /// Its hostname, if any.
    #[serde(deserialize_with = "nullable")]
    pub hostname: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_true_needs_the_type_and_true_status() {
        let conditions: Vec<Condition> =
            serde_json::from_str(r#"[{"type":"Ready","status":"False"},{"type":"AbleToScale","status":"True"}]"#)
                .unwrap();
        assert!(Condition::is_true(&conditions, "AbleToScale"));
        assert!(!Condition::is_true(&conditions, "Ready"));
    }
}
