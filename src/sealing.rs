//! Secrets at rest: values Tern must read back (DKIM private keys) are
//! sealed with AES-256-GCM under a key that lives outside the database
//! (`secrets.key`, or a file generated on first run), so a database dump or
//! backup alone does not give away any tenant's signing key.
//!
//! A sealed value is `TSK1 | key id (8) | nonce (12) | ciphertext | tag`.
//! The key id tells a value sealed under another key from a damaged one;
//! the additional data binds a value to its row (a domain's id), so sealed
//! keys cannot be swapped between rows. Plain PKCS#8 DER starts with 0x30,
//! never with the magic, so rows from before sealing are recognised and
//! sealed at start.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::config::SecretsSettings;
use crate::domain::Redacted;

/// What every sealed value starts with (format version 1).
pub const MAGIC: &[u8; 4] = b"TSK1";
const KEY_ID_LEN: usize = 8;
const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN + NONCE_LEN;
const KEY_LEN: usize = 32;

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the value is not sealed")]
    NotSealed,
    #[error("the value was sealed under another key (id {0}); every process needs the same secrets.key")]
    OtherKey(String),
    #[error("the sealed value is damaged or belongs to another row")]
    Damaged,
}

/// The key values are sealed with. Its `Debug` shows only the key id.
pub struct SealingKey {
    key: LessSafeKey,
    id: [u8; KEY_ID_LEN],
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<SealingKey> {
        anyhow::ensure!(bytes.len() == KEY_LEN, "a sealing key is {KEY_LEN} bytes");
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow::anyhow!("bad AES-256 key"))?;
        let digest = Sha256::new_with_prefix(b"tern sealing key id\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Ok(SealingKey {
            key: LessSafeKey::new(unbound),
            id,
        })
    }

    /// The configured key: `secrets.key` (base64 of 32 bytes) if set, else
    /// the one in `secrets.key_file`, created (mode 0600) when absent.
    pub fn load(settings: &SecretsSettings) -> anyhow::Result<SealingKey> {
        match &settings.key {
            Some(key) => SealingKey::from_base64(key.expose()).context("secrets.key"),
            None => SealingKey::from_file(&settings.key_file),
        }
    }

    fn from_base64(text: &str) -> anyhow::Result<SealingKey> {
        let bytes = Redacted::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| anyhow::anyhow!("must be base64 of {KEY_LEN} random bytes"))?,
        );
        SealingKey::from_bytes(bytes.expose())
    }

    /// Reads the key file, or writes a new random key there. Several
    /// processes starting at once agree: only one file creation succeeds,
    /// and the others read what it wrote.
    fn from_file(path: &Path) -> anyhow::Result<SealingKey> {
        let read = || -> anyhow::Result<SealingKey> {
            let text = Redacted::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading secrets.key_file {}", path.display()))?,
            );
            SealingKey::from_base64(text.expose())
                .with_context(|| format!("secrets.key_file {}", path.display()))
        };
        if path.exists() {
            warn_if_readable_by_others(path);
            return read();
        }
        let mut bytes = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let encoded = Redacted::new(STANDARD.encode(bytes));
        // Written whole under a private name, then linked into place: the
        // link fails if another process got there first (then its key is
        // read), and nobody ever reads a half-written file.
        let temp = path.with_file_name(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("secrets.key"),
            uuid::Uuid::new_v4().simple()
        ));
        let written = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temp)?;
            file.write_all(format!("{}\n", encoded.expose()).as_bytes())?;
            file.sync_all()?;
            std::fs::hard_link(&temp, path)
        })();
        let _ = std::fs::remove_file(&temp);
        match written {
            Ok(()) => {
                tracing::warn!(path = %path.display(), "generated a new secrets key; back it up: without it, sealed DKIM keys cannot be read");
                SealingKey::from_bytes(&bytes)
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => read(),
            Err(err) => Err(err).with_context(|| format!("creating secrets.key_file {}", path.display())),
        }
    }

    /// The key's id, as found in the values it sealed.
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }

    /// Seals `plain`, bound to `row` (e.g. a domain's id).
    pub fn seal(&self, plain: &[u8], row: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // aws-lc's generator does not fail once the library is initialised.
        if aws_lc_rs::rand::fill(&mut nonce).is_err() {
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
        }
        let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(row), &mut body)
            .expect("AES-GCM seals any input shorter than 64 GiB");
        out.extend_from_slice(&body);
        out
    }

    /// Opens a value sealed by [`SealingKey::seal`] for the same `row`.
    pub fn open(&self, sealed: &[u8], row: &[u8]) -> Result<Redacted<Vec<u8>>, OpenError> {
        if !is_sealed(sealed) {
            return Err(OpenError::NotSealed);
        }
        if sealed.len() < HEADER_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Damaged);
        }
        let id = &sealed[MAGIC.len()..MAGIC.len() + KEY_ID_LEN];
        if id != self.id {
            return Err(OpenError::OtherKey(hex::encode(id)));
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[MAGIC.len() + KEY_ID_LEN..HEADER_LEN])
            .map_err(|_| OpenError::Damaged)?;
        let mut body = sealed[HEADER_LEN..].to_vec();
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(row), &mut body)
            .map_err(|_| OpenError::Damaged)?
            .len();
        body.truncate(plain_len);
        Ok(Redacted::new(body))
    }

    /// Opens a stored value; one still in clear (written by an older
    /// version during a rolling upgrade; sealed at the next start) is
    /// taken as it is.
    pub fn open_stored(&self, stored: &[u8], row: &[u8]) -> Result<Redacted<Vec<u8>>, OpenError> {
        match self.open(stored, row) {
            Err(OpenError::NotSealed) => Ok(Redacted::new(stored.to_vec())),
            other => other,
        }
    }

    /// Whether `sealed` was sealed under this key.
    pub fn sealed_here(&self, sealed: &[u8]) -> bool {
        sealed.starts_with(&self.header())
    }

    /// What every value sealed under this key starts with.
    pub fn header(&self) -> Vec<u8> {
        [&MAGIC[..], &self.id[..]].concat()
    }
}

/// Says so when the key file can be read by others than its owner.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "secrets.key_file is readable by other users; make it mode 0600");
        }
    }
}

/// Whether a stored value is sealed (under any key).
pub fn is_sealed(value: &[u8]) -> bool {
    value.starts_with(MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealingKey {
        SealingKey::from_bytes(&[byte; KEY_LEN]).unwrap()
    }

    #[test]
    fn seals_and_opens_for_the_same_row_only() {
        let k = key(1);
        let sealed = k.seal(b"private key", b"row-1");
        assert!(is_sealed(&sealed) && k.sealed_here(&sealed));
        assert!(!sealed.windows(11).any(|w| w == b"private key"));
        assert_eq!(k.open(&sealed, b"row-1").unwrap().expose(), b"private key");
        assert_eq!(k.open(&sealed, b"row-2"), Err(OpenError::Damaged));
        assert!(matches!(
            key(2).open(&sealed, b"row-1"),
            Err(OpenError::OtherKey(_))
        ));
        assert_eq!(k.open(b"\x30\x82plain der", b"row-1"), Err(OpenError::NotSealed));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(k.open(&flipped, b"row-1"), Err(OpenError::Damaged));
        assert_eq!(k.open(&sealed[..HEADER_LEN], b"row-1"), Err(OpenError::Damaged));
        assert_ne!(k.seal(b"x", b"r"), k.seal(b"x", b"r"), "nonces repeat");
        // A row still in clear (an older version wrote it) is taken as is.
        assert_eq!(
            k.open_stored(b"\x30\x82der", b"row-1").unwrap().expose(),
            b"\x30\x82der"
        );
        assert_eq!(k.open_stored(&sealed, b"row-1").unwrap().expose(), b"private key");
    }

    #[test]
    fn a_key_file_is_created_once_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("tern-sealing-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = SecretsSettings {
            key: None,
            key_file: dir.join("secrets.key"),
        };
        let first = SealingKey::load(&settings).unwrap();
        let again = SealingKey::load(&settings).unwrap();
        assert_eq!(first.id(), again.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&settings.key_file)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = first.seal(b"k", b"r");
        assert_eq!(again.open(&sealed, b"r").unwrap().expose(), b"k");
        // Debug shows the id, never the key.
        let text = std::fs::read_to_string(&settings.key_file).unwrap();
        let shown = format!("{first:?}");
        assert!(
            shown.contains(&first.id()) && !shown.contains(text.trim()),
            "{shown}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_configured_key_must_be_32_bytes_of_base64() {
        let with = |key: &str| SecretsSettings {
            key: Some(Redacted::new(key.into())),
            key_file: "/nonexistent".into(),
        };
        assert!(SealingKey::load(&with(&STANDARD.encode([7u8; 32]))).is_ok());
        assert!(SealingKey::load(&with("not base64!")).is_err());
        assert!(SealingKey::load(&with(&STANDARD.encode([7u8; 16]))).is_err());
    }
}
