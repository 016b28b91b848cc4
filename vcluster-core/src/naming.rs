//! vCluster's "safe concatenation" of name parts, byte for byte.
//!
//! Every host name and every hashed label key is built by
//! [`safe_concat_name`]: join the parts with `-`; a result of at most 63
//! bytes is the name; a longer one is cut to its first 52 bytes, followed by
//! `-` and the first 10 hex digits of the SHA-256 of the *whole* joined
//! string, and in that shortened name every `.-` becomes `-`. This is what
//! vCluster's Go `SafeConcatName` does, so a host cluster that ran vCluster
//! sees the same names from us.
//!
//! These functions run for every object event, so they allocate at most the
//! returned `String` and hash only names that are too long.

use sha2::{Digest, Sha256};

/// Longest name safe concatenation returns (a DNS-1123 label's limit).
pub const MAX_NAME_LENGTH: usize = 63;
/// How many bytes of the joined string a shortened name keeps.
pub const SHORTENED_PREFIX_LENGTH: usize = 52;
/// How many hex digits of the SHA-256 digest go into shortened names and
/// hashed label keys.
pub const HASH_LENGTH: usize = 10;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The first 10 lowercase hex digits of a SHA-256 digest, kept on the stack
/// so hashing a label key does not allocate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hex10([u8; HASH_LENGTH]);

impl Hex10 {
    fn from_digest(digest: &[u8]) -> Self {
        let mut out = [b'0'; HASH_LENGTH];
        for (i, byte) in digest.iter().take(HASH_LENGTH / 2).enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        Hex10(out)
    }

    /// The digits as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Display for Hex10 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Hex10 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hex10({:?})", self.as_str())
    }
}

impl AsRef<str> for Hex10 {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// First 10 hex digits of `sha256(input)`: vCluster's short hash, used for
/// shortened names and for hashed label keys.
pub fn hash_hex10(input: &str) -> Hex10 {
    Hex10::from_digest(&Sha256::digest(input.as_bytes()))
}

/// Like [`hash_hex10`] of `parts.join("-")`, without building the string.
fn joined_hash_hex10(parts: &[&str]) -> Hex10 {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b"-");
        }
        hasher.update(part.as_bytes());
    }
    Hex10::from_digest(&hasher.finalize())
}

fn joined_len(parts: &[&str]) -> usize {
    parts.iter().map(|p| p.len()).sum::<usize>() + parts.len().saturating_sub(1)
}

/// Largest char boundary of `s` at or below `index`.
///
/// Go slices bytes and may cut a multi-byte character in half; Rust strings
/// cannot hold that, so for non-ASCII input (never a valid Kubernetes name)
/// we cut before the character instead. ASCII input is unaffected.
fn floor_char_boundary(s: &str, index: usize) -> usize {
    if index >= s.len() {
        return s.len();
    }
    (0..=index)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// Appends `kept` and a `-` to `out`, dropping every `.` that is followed by
/// `-` (Go's `strings.ReplaceAll(s, ".-", "-")` on the shortened name; the
/// hash that follows has neither dots nor dashes).
fn push_cleaned_prefix(out: &mut String, kept: &str) {
    let mut start = 0;
    for (i, _) in kept.match_indices(".-") {
        out.push_str(&kept[start..i]);
        start = i + 1;
    }
    let tail = &kept[start..];
    out.push_str(tail.strip_suffix('.').unwrap_or(tail));
    out.push('-');
}

/// Joins `parts` with `-` exactly like vCluster's `SafeConcatName`.
///
/// ```
/// use vcluster_core::naming::safe_concat_name;
/// assert_eq!(safe_concat_name(&["web", "x", "default", "x", "vc"]), "web-x-default-x-vc");
/// let long = safe_concat_name(&[&"a".repeat(70)]);
/// assert_eq!(long.len(), 63);
/// ```
pub fn safe_concat_name(parts: &[&str]) -> String {
    let total = joined_len(parts);
    if total <= MAX_NAME_LENGTH {
        let mut out = String::with_capacity(total);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push('-');
            }
            out.push_str(part);
        }
        return out;
    }

    // The first 52 bytes of the joined string (never more is copied, however
    // long a part is).
    let mut head = String::with_capacity(SHORTENED_PREFIX_LENGTH);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            if head.len() >= SHORTENED_PREFIX_LENGTH {
                break;
            }
            head.push('-');
        }
        let room = SHORTENED_PREFIX_LENGTH - head.len();
        if part.len() <= room {
            head.push_str(part);
        } else {
            head.push_str(&part[..floor_char_boundary(part, room)]);
            break;
        }
    }
    let hash = joined_hash_hex10(parts);

    let mut out = String::with_capacity(MAX_NAME_LENGTH);
    push_cleaned_prefix(&mut out, &head);
    out.push_str(hash.as_str());
    out
}

/// True if `candidate == safe_concat_name(parts)`, without allocating when
/// the joined name is short (the common case when checking ownership).
pub fn safe_concat_name_eq(parts: &[&str], candidate: &str) -> bool {
    let total = joined_len(parts);
    if total > MAX_NAME_LENGTH {
        return safe_concat_name(parts) == candidate;
    }
    if candidate.len() != total {
        return false;
    }
    let mut rest = candidate;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            match rest.strip_prefix('-') {
                Some(r) => rest = r,
                None => return false,
            }
        }
        match rest.strip_prefix(part) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// The hashed label key vCluster writes for `key`:
/// `safe_concat_name([prefix, vcluster, "x", hash_hex10(key)])`.
///
/// With the prefix `vcluster.loft.sh/label` this is how reserved label keys
/// are stored on the host; with `vcluster.loft.sh/ns-label` it is how virtual
/// namespace labels are copied onto host pods (the markers module names both).
pub fn hashed_label_key(prefix: &str, vcluster: &str, key: &str) -> String {
    let hash = hash_hex10(key);
    safe_concat_name(&[prefix, vcluster, "x", hash.as_str()])
}

/// All keys [`hashed_label_key`] can produce for one prefix and virtual
/// cluster: a fixed stem followed by 10 hex digits.
///
/// The translator uses it to recognise its own bookkeeping keys on the host
/// and to refuse virtual labels that would forge them, without hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedKeySpace {
    /// `"<prefix>-<vcluster>-x-"`, the joined string before the hash.
    joined_prefix: String,
    /// What every key starts with (the cleaned, shortened head if the keys
    /// are longer than 63 bytes).
    stem: String,
    /// Whether keys are shortened (hash of the joined string) or not (hash
    /// of the label key itself).
    shortened: bool,
}

impl HashedKeySpace {
    /// The key space of `hashed_label_key(prefix, vcluster, _)`.
    pub fn new(prefix: &str, vcluster: &str) -> Self {
        let joined_prefix = format!("{prefix}-{vcluster}-x-");
        if joined_prefix.len() + HASH_LENGTH <= MAX_NAME_LENGTH {
            return HashedKeySpace {
                stem: joined_prefix.clone(),
                joined_prefix,
                shortened: false,
            };
        }
        // Longer than 63: the joined prefix has at least 54 bytes, so the
        // first 52 bytes of every key's joined string come from it alone.
        let cut = floor_char_boundary(&joined_prefix, SHORTENED_PREFIX_LENGTH);
        let mut stem = String::with_capacity(SHORTENED_PREFIX_LENGTH + 1);
        push_cleaned_prefix(&mut stem, &joined_prefix[..cut]);
        HashedKeySpace {
            joined_prefix,
            stem,
            shortened: true,
        }
    }

    /// The hashed key for `key`; equal to `hashed_label_key(prefix, vcluster, key)`.
    pub fn key_for(&self, key: &str) -> String {
        let hash = hash_hex10(key);
        let mut out = String::with_capacity(self.stem.len() + HASH_LENGTH);
        out.push_str(&self.stem);
        if self.shortened {
            // The joined string is `joined_prefix` followed by the key's hash.
            let mut hasher = Sha256::new();
            hasher.update(self.joined_prefix.as_bytes());
            hasher.update(hash.as_str().as_bytes());
            out.push_str(Hex10::from_digest(&hasher.finalize()).as_str());
        } else {
            out.push_str(hash.as_str());
        }
        out
    }

    /// True if `candidate` has the shape of a key in this space.
    pub fn contains(&self, candidate: &str) -> bool {
        candidate.len() == self.stem.len() + HASH_LENGTH
            && candidate.starts_with(self.stem.as_str())
            && candidate.as_bytes()[self.stem.len()..]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward transcription of the Go code, as a reference.
    fn reference(parts: &[&str]) -> String {
        let full = parts.join("-");
        if full.len() <= 63 {
            return full;
        }
        let digest = Sha256::digest(full.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let cut = floor_char_boundary(&full, 52);
        format!("{}-{}", &full[..cut], &hex[..10]).replace(".-", "-")
    }

    #[test]
    fn matches_reference_on_edge_cases() {
        let cases: Vec<Vec<String>> = vec![
            vec![],
            vec![String::new()],
            vec!["a".into(), String::new(), "b".into()],
            vec!["a".repeat(63)],
            vec!["a".repeat(64)],
            vec!["a".repeat(51) + ".", "b".repeat(20)],
            vec!["a".repeat(50) + "..", "b".repeat(20)],
            vec!["a.-b.-c".into(), "d".repeat(60)],
            vec!["x".repeat(51) + "é", "y".repeat(20)],
            vec!["é".repeat(40)],
        ];
        for parts in cases {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let got = safe_concat_name(&parts);
            assert_eq!(got, reference(&parts), "{parts:?}");
            assert!(safe_concat_name_eq(&parts, &got));
            assert!(got.len() <= MAX_NAME_LENGTH);
        }
    }

    #[test]
    fn eq_rejects_near_misses() {
        let parts = ["web", "x", "default", "x", "vc"];
        assert!(safe_concat_name_eq(&parts, "web-x-default-x-vc"));
        assert!(!safe_concat_name_eq(&parts, "web-x-default-x-vd"));
        assert!(!safe_concat_name_eq(&parts, "web-x-default-x-vc1"));
        assert!(!safe_concat_name_eq(&parts, "web_x-default-x-vc"));
        assert!(!safe_concat_name_eq(&parts, ""));
    }

    #[test]
    fn key_space_matches_hashed_label_key() {
        for vc in ["vc", "my-vcluster", &"v".repeat(30), &"v".repeat(63)] {
            for prefix in ["vcluster.loft.sh/label", "vcluster.loft.sh/ns-label"] {
                let space = HashedKeySpace::new(prefix, vc);
                for key in ["release", "app", "example.com/x"] {
                    let hashed = hashed_label_key(prefix, vc, key);
                    assert_eq!(space.key_for(key), hashed);
                    assert!(space.contains(&hashed), "{hashed}");
                }
                assert!(!space.contains("release"));
                assert!(!space.contains(&format!("{prefix}-{vc}-x-ABCDEF0123")));
            }
        }
    }
}
