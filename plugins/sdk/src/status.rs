//! Status shapes many kinds share: conditions and load-balancer ingress points.

use crate::object;

/// One entry of `status.conditions[]`: only what summaries read.
#[object]
#[derive(Debug, Clone)]
pub struct Condition {
    /// `type` (`Ready`, `Complete`, `AbleToScale`…).
    #[serde(rename = "type")]
    pub kind: String,
    /// `status`: `"True"`, `"False"` or `"Unknown"`.
    pub status: String,
}

impl Condition {
    /// True when some condition of type `kind` has status `"True"`.
    pub fn is_true(conditions: &[Condition], kind: &str) -> bool {
        conditions.iter().any(|c| c.kind == kind && c.status == "True")
    }
}

/// `status.loadBalancer` of Services and Ingresses.
#[object]
#[derive(Debug, Clone)]
pub struct LoadBalancerStatus {
    /// The ingress points, in order.
    pub ingress: Vec<LoadBalancerIngress>,
}

/// One load-balancer ingress point.
#[object]
#[derive(Debug, Clone)]
pub struct LoadBalancerIngress {
    /// Its IP address, if any.
    pub ip: String,
    /// Its hostname, if any.
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
