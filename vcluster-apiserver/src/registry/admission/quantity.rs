//! Resource quantities (`500m`, `1Gi`, `2e3`) as upstream's
//! `resource.Quantity` reads, compares, adds and prints them: admission
//! (LimitRanger, ResourceQuota) and the quota controller compute with them
//! and answer with upstream's canonical text.
//!
//! Self-contained (only `std`): the resource-quota controller of
//! `vcluster-controllers` compiles this same file, so usage is counted the
//! same way on both sides.

use std::cmp::Ordering;
use std::fmt;

/// Nano units in one unit.
const NANO: i128 = 1_000_000_000;

/// How a quantity was written, which decides how it prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Powers of 1024 (`Ki`, `Mi`, ...).
    BinarySi,
    /// Powers of 1000 (`m`, `k`, `M`, ...) or no suffix.
    DecimalSi,
    /// Scientific notation (`2e3`).
    DecimalExponent,
}

/// A quantity, exact to the nano unit (upstream rounds finer values up).
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    /// The value in nano units.
    nanos: i128,
    /// How it prints.
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Quantity {
    /// Zero, printed as upstream's zero `DecimalSI` quantity (`0`).
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::DecimalSi,
    };

    /// A whole number of units (`count/pods`, `services`).
    pub fn from_units(units: i64) -> Self {
        Self {
            nanos: i128::from(units) * NANO,
            format: Format::DecimalSi,
        }
    }

    /// Parses upstream's quantity syntax; `None` for anything it refuses.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return None;
        }
        // The decimal digits as an integer and a power of ten.
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return None;
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let mut exponent10: i32 = -(fraction.len() as i32);
        let mut binary: u32 = 0;
        let format = match suffix {
            "" => Format::DecimalSi,
            "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
                binary = 10
                    * (["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                        .iter()
                        .position(|s| *s == suffix)? as u32
                        + 1);
                Format::BinarySi
            }
            "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => {
                exponent10 += match suffix {
                    "n" => -9,
                    "u" => -6,
                    "m" => -3,
                    "k" => 3,
                    "M" => 6,
                    "G" => 9,
                    "T" => 12,
                    "P" => 15,
                    _ => 18,
                };
                Format::DecimalSi
            }
            _ => {
                let exp = suffix.strip_prefix(['e', 'E'])?;
                let value: i32 = exp.parse().ok()?;
                if exp.starts_with('+') || exp.is_empty() || value.abs() > 40 {
                    return None;
                }
                exponent10 += value;
                Format::DecimalExponent
            }
        };
        // nanos = mantissa * 10^exponent10 * 2^binary * 1e9, rounded up.
        let mut scaled = mantissa.checked_mul(1i128.checked_shl(binary)?)?;
        let shift = exponent10 + 9;
        if shift >= 0 {
            scaled = scaled.checked_mul(10i128.checked_pow(shift as u32)?)?;
        } else {
            let divisor = 10i128.checked_pow((-shift) as u32)?;
            let rounded_up = scaled % divisor != 0;
            scaled = scaled / divisor + i128::from(rounded_up);
        }
        Some(Self {
            nanos: if negative { -scaled } else { scaled },
            format,
        })
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The sum; it prints in `self`'s format (upstream's `Add`), or in
    /// `other`'s when `self` is zero (a sum starts from an untyped zero).
    pub fn plus(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            format: if self.nanos == 0 {
                other.format
            } else {
                self.format
            },
        }
    }

    /// The difference, in `self`'s format.
    pub fn minus(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: self.format,
        }
    }

    /// The value in whole units, rounded up (upstream's `Value`).
    pub fn value(&self) -> i128 {
        div_ceil(self.nanos, NANO)
    }

    /// The value in thousandths, rounded up (upstream's `MilliValue`).
    pub fn milli_value(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }

    /// Compares as upstream's LimitRanger does: in thousandths while every
    /// value fits them, else in units.
    pub fn cmp_coarse(&self, other: &Quantity) -> Ordering {
        self.milli_value().cmp(&other.milli_value())
    }
}

fn div_ceil(value: i128, by: i128) -> i128 {
    let quotient = value / by;
    if value % by != 0 && value > 0 {
        quotient + 1
    } else {
        quotient
    }
}

impl fmt::Display for Quantity {
    /// Upstream's canonical text: `500m`, `1Gi`, `2k`, `1536Mi`, `2e3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        if format == Format::BinarySi && (self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0)
        {
            format = Format::DecimalSi;
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = self.nanos.abs();
        if format == Format::BinarySi {
            let mut units = magnitude / NANO;
            let mut power = 0;
            while power < 6 && units % 1024 == 0 {
                units /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{sign}{units}{suffix}");
        }
        let mut mantissa = magnitude;
        let mut exponent: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        while exponent % 3 != 0 {
            mantissa *= 10;
            exponent -= 1;
        }
        if format == Format::DecimalExponent {
            return if exponent == 0 {
                write!(f, "{sign}{mantissa}")
            } else {
                write!(f, "{sign}{mantissa}e{exponent}")
            };
        }
        while exponent > 18 {
            mantissa *= 1000;
            exponent -= 3;
        }
        let suffix = match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        write!(f, "{sign}{mantissa}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    fn canonical(text: &str) -> String {
        Quantity::parse(text)
            .map(|q| q.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn prints_as_upstream() {
        for (input, want) in [
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("512Ki", "512Ki"),
            ("0.5Ki", "512"),
            ("2e3", "2e3"),
            ("100M", "100M"),
            ("0", "0"),
            ("1n", "1n"),
        ] {
            assert_eq!(canonical(input), want, "{input}");
        }
        assert!(Quantity::parse("abc").is_none());
        assert!(Quantity::parse("1Xi").is_none());
        assert!(Quantity::parse("").is_none());
    }

    #[test]
    fn adds_and_compares() {
        let a = Quantity::parse("500m").unwrap_or(Quantity::ZERO);
        let b = Quantity::parse("1").unwrap_or(Quantity::ZERO);
        assert_eq!(a.plus(a), b);
        assert_eq!(a.plus(b).to_string(), "1500m");
        assert!(a < b);
    }
}
