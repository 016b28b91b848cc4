//! The providers of kube-apiserver's encryption at rest, byte for byte:
//! a stored value is `k8s:enc:<provider>:v1:<key name>:` followed by the
//! cipher's output, so files written by one server read in the other.
//!
//! - `aesgcm`: a random 12-byte nonce, then AES-GCM's ciphertext and tag;
//!   the storage key is the additional authenticated data, so a value
//!   copied to another key does not decrypt.
//! - `aescbc`: a random 16-byte IV, then AES-CBC of the PKCS#7-padded value.
//! - `secretbox`: a random 24-byte nonce, then XSalsa20-Poly1305's output.
//! - `identity`: the value as is; it refuses to read values that carry
//!   the `k8s:enc:` prefix.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};

/// The prefix every encrypted value starts with.
pub const ENCRYPTED_PREFIX: &str = "k8s:enc:";

type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

/// One key's cipher, built once when the configuration is loaded.
#[derive(Clone)]
pub enum Cipher {
    /// AES-GCM with a 128-bit key.
    Gcm128(aes_gcm::Aes128Gcm),
    /// AES-GCM with a 192-bit key.
    Gcm192(Aes192Gcm),
    /// AES-GCM with a 256-bit key.
    Gcm256(aes_gcm::Aes256Gcm),
    /// AES-CBC (the key; the mode needs a fresh IV per value).
    Cbc(Vec<u8>),
    /// XSalsa20-Poly1305.
    Secretbox(crypto_secretbox::XSalsa20Poly1305),
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        f.write_str(match self {
            Self::Gcm128(_) => "aes-128-gcm",
            Self::Gcm192(_) => "aes-192-gcm",
            Self::Gcm256(_) => "aes-256-gcm",
            Self::Cbc(_) => "aes-cbc",
            Self::Secretbox(_) => "xsalsa20-poly1305",
        })
    }
}

impl Cipher {
    /// AES-GCM for a 16-, 24- or 32-byte key.
    pub fn aes_gcm(key: &[u8]) -> Option<Self> {
        match key.len() {
            16 => aes_gcm::Aes128Gcm::new_from_slice(key)
                .ok()
                .map(Self::Gcm128),
            24 => Aes192Gcm::new_from_slice(key).ok().map(Self::Gcm192),
            32 => aes_gcm::Aes256Gcm::new_from_slice(key)
                .ok()
                .map(Self::Gcm256),
            _ => None,
        }
    }

    /// AES-CBC for a 16-, 24- or 32-byte key.
    pub fn aes_cbc(key: &[u8]) -> Option<Self> {
        matches!(key.len(), 16 | 24 | 32).then(|| Self::Cbc(key.to_vec()))
    }

    /// Secretbox for a 32-byte key.
    pub fn secretbox(key: &[u8]) -> Option<Self> {
        crypto_secretbox::XSalsa20Poly1305::new_from_slice(key)
            .ok()
            .map(Self::Secretbox)
    }

    /// Encrypts `plain`; `aad` is authenticated by AES-GCM only, as upstream.
    fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        fn gcm<A: Aead>(aead: &A, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
            let nonce = random::<12>()?;
            let sealed = aead
                .encrypt(
                    aes_gcm::Nonce::from_slice(&nonce),
                    Payload { msg: plain, aad },
                )
                .map_err(|_| "AES-GCM encryption failed".to_owned())?;
            Ok([nonce.as_slice(), &sealed].concat())
        }
        match self {
            Self::Gcm128(c) => gcm(c, plain, aad),
            Self::Gcm192(c) => gcm(c, plain, aad),
            Self::Gcm256(c) => gcm(c, plain, aad),
            Self::Cbc(key) => {
                let iv = random::<16>()?;
                let sealed = cbc_encrypt(key, &iv, plain)?;
                Ok([iv.as_slice(), &sealed].concat())
            }
            Self::Secretbox(c) => {
                let nonce = random::<24>()?;
                let sealed = c
                    .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), plain)
                    .map_err(|_| "secretbox encryption failed".to_owned())?;
                Ok([nonce.as_slice(), &sealed].concat())
            }
        }
    }

    /// Decrypts what [`Cipher::seal`] wrote (here or in kube-apiserver).
    fn open(&self, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
        const SHORT: &str = "the stored data was shorter than the required size";
        fn gcm<A: Aead>(aead: &A, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
            if data.len() < 12 {
                return Err(SHORT.into());
            }
            let (nonce, sealed) = data.split_at(12);
            aead.decrypt(
                aes_gcm::Nonce::from_slice(nonce),
                Payload { msg: sealed, aad },
            )
            .map_err(|_| {
                "AES-GCM authentication failed (wrong key, or the value was moved or altered)"
                    .into()
            })
        }
        match self {
            Self::Gcm128(c) => gcm(c, data, aad),
            Self::Gcm192(c) => gcm(c, data, aad),
            Self::Gcm256(c) => gcm(c, data, aad),
            Self::Cbc(key) => {
                if data.len() < 16 {
                    return Err(SHORT.into());
                }
                let (iv, sealed) = data.split_at(16);
                if sealed.len() % 16 != 0 {
                    return Err("the stored data is not a multiple of the block size".into());
                }
                cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
                    .map(|d| d.decrypt_padded_vec_mut::<Pkcs7>(sealed))
                    .or_else(|_| {
                        cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
                            .map(|d| d.decrypt_padded_vec_mut::<Pkcs7>(sealed))
                    })
                    .or_else(|_| {
                        cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
                            .map(|d| d.decrypt_padded_vec_mut::<Pkcs7>(sealed))
                    })
                    .map_err(|_| "unusable AES key".to_owned())?
                    .map_err(|_| "invalid padding on input (wrong key?)".to_owned())
            }
            Self::Secretbox(c) => {
                if data.len() < 24 + 16 {
                    return Err(SHORT.into());
                }
                let (nonce, sealed) = data.split_at(24);
                c.decrypt(crypto_secretbox::Nonce::from_slice(nonce), sealed)
                    .map_err(|_| {
                        "secretbox authentication failed (wrong key, or the value was altered)"
                            .into()
                    })
            }
        }
    }
}

/// AES-CBC with PKCS#7 padding for any of the three AES key sizes.
fn cbc_encrypt(key: &[u8], iv: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
    let bad = |_| "unusable AES key".to_owned();
    Ok(match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plain),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plain),
        _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plain),
    })
}

/// `N` bytes from the operating system's random source (upstream reads
/// `crypto/rand`): nonces and IVs must never repeat under one key.
fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no random bytes for a nonce: {e}"))?;
    Ok(bytes)
}

/// A key with the name that is written in front of what it encrypted.
#[derive(Clone, Debug)]
pub struct NamedKey {
    name: String,
    cipher: Cipher,
}

impl NamedKey {
    /// A named key (the name goes into every value it writes).
    pub fn new(name: String, cipher: Cipher) -> Self {
        Self { name, cipher }
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One entry of a resource's `providers` list.
#[derive(Clone, Debug)]
pub enum Provider {
    /// `aesgcm`: the first key writes, every key reads.
    AesGcm(Vec<NamedKey>),
    /// `aescbc`: the first key writes, every key reads.
    AesCbc(Vec<NamedKey>),
    /// `secretbox`: the first key writes, every key reads.
    Secretbox(Vec<NamedKey>),
    /// `identity`: stores values as they are.
    Identity,
}

/// Why a value could not be written or read through the providers.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The value names a provider or key the configuration lacks.
    #[error("the value of {key} is encrypted with {provider} key {key_name:?}, which the encryption configuration does not list for this resource (configured: {configured})")]
    NotConfigured {
        /// The storage key.
        key: String,
        /// The provider named in the value.
        provider: String,
        /// The key name named in the value.
        key_name: String,
        /// What is configured, e.g. `aesgcm key "key2", identity`.
        configured: String,
    },
    /// A plain value where no `identity` provider allows one.
    #[error("the value of {key} is stored unencrypted, but the encryption configuration has no identity provider for this resource (configured: {configured})")]
    Unencrypted {
        /// The storage key.
        key: String,
        /// What is configured.
        configured: String,
    },
    /// A configured key failed to decrypt the value.
    #[error("cannot decrypt the value of {key}: {reasons}")]
    Decrypt {
        /// The storage key.
        key: String,
        /// What every candidate key answered.
        reasons: String,
    },
    /// Encryption itself failed (no random bytes).
    #[error("cannot encrypt the value of {key}: {reason}")]
    Encrypt {
        /// The storage key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl Provider {
    /// The provider's name in the file and in the prefix.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AesGcm(_) => "aesgcm",
            Self::AesCbc(_) => "aescbc",
            Self::Secretbox(_) => "secretbox",
            Self::Identity => "identity",
        }
    }

    fn keys(&self) -> &[NamedKey] {
        match self {
            Self::AesGcm(keys) | Self::AesCbc(keys) | Self::Secretbox(keys) => keys,
            Self::Identity => &[],
        }
    }

    /// What a value this provider writes starts with (empty for identity).
    pub fn prefix(&self) -> String {
        match self {
            Self::Identity => String::new(),
            other => format!("{ENCRYPTED_PREFIX}{}:v1:", other.name()),
        }
    }

    /// Writes `plain` as stored at `key`: the prefix, the first key's name
    /// and the ciphertext (the value itself for identity).
    pub fn encrypt(&self, key: &str, plain: &[u8]) -> Result<Vec<u8>, TransformError> {
        let Some(first) = self.keys().first() else {
            return Ok(plain.to_vec());
        };
        let sealed =
            first
                .cipher
                .seal(plain, key.as_bytes())
                .map_err(|reason| TransformError::Encrypt {
                    key: key.to_owned(),
                    reason,
                })?;
        let mut out = format!("{}{}:", self.prefix(), first.name).into_bytes();
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

/// Reads a stored value as upstream's prefix transformers do: every
/// provider (and key) whose prefix the value starts with is tried in
/// order; `identity` reads only values without the `k8s:enc:` prefix.
/// The flag says the value is stale: not written by the first provider's
/// first key, so an update must rewrite it even when nothing else changed
/// (key rotation rewrites every secret that way).
pub fn decrypt(
    providers: &[Provider],
    key: &str,
    data: &[u8],
) -> Result<(Vec<u8>, bool), TransformError> {
    let encrypted = data.starts_with(ENCRYPTED_PREFIX.as_bytes());
    let mut reasons = Vec::new();
    for (index, provider) in providers.iter().enumerate() {
        if let Provider::Identity = provider {
            if !encrypted {
                return Ok((data.to_vec(), index != 0));
            }
            continue;
        }
        let Some(rest) = data.strip_prefix(provider.prefix().as_bytes()) else {
            continue;
        };
        for (key_index, named) in provider.keys().iter().enumerate() {
            let Some(sealed) = rest
                .strip_prefix(named.name.as_bytes())
                .and_then(|r| r.strip_prefix(b":"))
            else {
                continue;
            };
            match named.cipher.open(sealed, key.as_bytes()) {
                Ok(plain) => return Ok((plain, index != 0 || key_index != 0)),
                Err(reason) => reasons.push(format!(
                    "{} key {:?}: {reason}",
                    provider.name(),
                    named.name
                )),
            }
        }
    }
    if !reasons.is_empty() {
        return Err(TransformError::Decrypt {
            key: key.to_owned(),
            reasons: reasons.join("; "),
        });
    }
    let configured = describe(providers);
    if !encrypted {
        return Err(TransformError::Unencrypted {
            key: key.to_owned(),
            configured,
        });
    }
    // `k8s:enc:<provider>:v1:<name>:...`, for the message only.
    let text = String::from_utf8_lossy(&data[ENCRYPTED_PREFIX.len()..data.len().min(256)]);
    let mut parts = text.splitn(4, ':');
    let provider = parts.next().unwrap_or_default().to_owned();
    let _version = parts.next();
    let key_name = parts.next().unwrap_or_default().to_owned();
    Err(TransformError::NotConfigured {
        key: key.to_owned(),
        provider,
        key_name,
        configured,
    })
}

/// `aesgcm key "key2", identity`: for error messages.
fn describe(providers: &[Provider]) -> String {
    providers
        .iter()
        .map(|p| match p {
            Provider::Identity => "identity".to_owned(),
            other => other
                .keys()
                .iter()
                .map(|k| format!("{} key {:?}", other.name(), k.name))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
