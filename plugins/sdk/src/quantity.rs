//! Kubernetes resource quantities (`"250m"`, `"7941604Ki"`, `"1.5e3"`), parsed exactly.
//!
//! Node capacity is *formatted* (spec 4.19): CPU in millicores rounded up, memory in
//! bytes rounded up. Parsing keeps the decimal mantissa as an integer so no float
//! rounding creeps in before the final formatting.

/// A parsed quantity: `mantissa × 10^exp10 × 2^exp2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    exp10: i32,
    exp2: u32,
}

/// Parses a quantity string; `None` when it is not a valid Kubernetes quantity.
pub fn parse(text: &str) -> Option<Quantity> {
    let text = text.trim();
    let (sign, rest) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut mantissa: i128 = 0;
    for digit in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(digit - b'0'))?;
    }
    let mut exp10 = -i32::try_from(frac_part.len()).ok()?;
    let mut exp2 = 0;
    match suffix {
        "" => {}
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        exponent if exponent.starts_with(['e', 'E']) => exp10 += exponent[1..].parse::<i32>().ok()?,
        _ => return None,
    }
    Some(Quantity {
        mantissa: sign * mantissa,
        exp10,
        exp2,
    })
}

impl Quantity {
    /// The value × 10^`scale`, rounded up (toward positive infinity), saturating.
    /// `scale` 3 gives millicores; 0 gives bytes.
    pub fn ceil_scaled(&self, scale: i32) -> i128 {
        let mut numerator = self.mantissa;
        for _ in 0..self.exp2 {
            numerator = numerator.saturating_mul(2);
        }
        let exp = self.exp10 + scale;
        if exp >= 0 {
            for _ in 0..exp {
                numerator = numerator.saturating_mul(10);
            }
            return numerator;
        }
        let mut denominator: i128 = 1;
        for _ in 0..(-exp) {
            denominator = denominator.saturating_mul(10);
        }
        let quotient = numerator.div_euclid(denominator);
        if numerator.rem_euclid(denominator) != 0 {
            quotient + 1
        } else {
            quotient
        }
    }
}

/// Millicores of a CPU quantity, rounded up; 0 when absent or invalid.
pub fn millicores(text: Option<&str>) -> i128 {
    text.and_then(parse).map_or(0, |q| q.ceil_scaled(3))
}

/// Bytes of a memory quantity, rounded up; 0 when absent or invalid.
pub fn bytes(text: Option<&str>) -> i128 {
    text.and_then(parse).map_or(0, |q| q.ceil_scaled(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_millicores_rounded_up() {
        assert_eq!(millicores(Some("2")), 2000);
        assert_eq!(millicores(Some("250m")), 250);
        assert_eq!(millicores(Some("1.5")), 1500);
        assert_eq!(millicores(Some("100u")), 1);
        assert_eq!(millicores(None), 0);
    }

    #[test]
    fn memory_is_bytes_rounded_up() {
        assert_eq!(bytes(Some("7941604Ki")), 7941604 * 1024);
        assert_eq!(bytes(Some("16Gi")), 16 << 30);
        assert_eq!(bytes(Some("1.5k")), 1500);
        assert_eq!(bytes(Some("1e3")), 1000);
        assert_eq!(bytes(Some("0.5")), 1);
    }

    #[test]
    fn invalid_quantities_are_rejected() {
        assert_eq!(parse("abc"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("12Qi"), None);
    }
}
