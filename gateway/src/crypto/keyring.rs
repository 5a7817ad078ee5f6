//! Master keys: a ring of them, one active, older ones kept so their data keys still open.
//!
//! A key's id is derived from the key itself, so the same key has the same id on every replica
//! and a wrong key can never pass for a right one by having the right name.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::CryptoError;
use super::aead::{self, KEY_LEN, SymmetricKey};

/// The known plaintext sealed under each master key so a wrong key is caught at start.
const CHECK_PLAINTEXT: &[u8] = b"credgate key check v1";

/// One master key (key-encryption key) and its derived id.
#[derive(Clone, Debug)]
pub struct MasterKey {
    id: String,
    key: SymmetricKey,
}

impl MasterKey {
    pub fn new(key: SymmetricKey) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"credgate master key id v1\0");
        hasher.update(key.expose());
        let id = hex::encode(&hasher.finalize()[..8]);
        Self { id, key }
    }

    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self::new(SymmetricKey::generate()?))
    }

    /// Parses a standard base64 encoding of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes =
            Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
                CryptoError::KeyRing("a master key must be base64 (standard alphabet) of 32 bytes".into())
            })?);
        Ok(Self::new(SymmetricKey::from_slice(&bytes)?))
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.key.expose()))
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Where the ring came from, which decides whether credgate may add keys to it itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRingSource {
    /// `CREDGATE_MASTER_KEY`: the operator owns it; rotation means editing it and restarting.
    Environment,
    /// A file credgate may rewrite (atomically, mode 0600) when asked to rotate.
    File(PathBuf),
    /// Built in code (tests).
    Memory,
}

/// A stored proof that a master key is the one the database was sealed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCheck {
    pub kek_id: String,
    pub sealed: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct KeyRing {
    /// Never empty; the first key is the active one.
    keys: Vec<MasterKey>,
    source: KeyRingSource,
}

impl KeyRing {
    pub fn new(keys: Vec<MasterKey>, source: KeyRingSource) -> Result<Self, CryptoError> {
        if keys.is_empty() {
            return Err(CryptoError::KeyRing("the key ring holds no master key".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for key in &keys {
            if !seen.insert(key.id.clone()) {
                return Err(CryptoError::KeyRing(format!("master key `{}` appears twice", key.id)));
            }
        }
        Ok(Self { keys, source })
    }

    /// Parses keys separated by commas, whitespace or lines (`#` starts a comment); the first
    /// is active.
    pub fn parse(text: &str, source: KeyRingSource) -> Result<Self, CryptoError> {
        let keys = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .flat_map(|line| line.split([',', ' ', '\t']))
            .filter(|item| !item.trim().is_empty())
            .map(MasterKey::from_base64)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys, source)
    }

    pub fn load_file(path: &Path) -> Result<Self, CryptoError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| CryptoError::KeyRing(format!("cannot read master key file {}: {e}", path.display())))?,
        );
        Self::parse(&text, KeyRingSource::File(path.to_owned()))
    }

    /// Writes the ring to its file atomically with mode 0600 (temp file, fsync, rename).
    pub fn save_file(&self, path: &Path) -> Result<(), CryptoError> {
        let io = |e: std::io::Error| CryptoError::KeyRing(format!("cannot write {}: {e}", path.display()));
        let mut text = Zeroizing::new(String::from(
            "# credgate master keys, base64; the first is active, the others still open older data.\n",
        ));
        for key in &self.keys {
            text.push_str(&key.to_base64());
            text.push('\n');
        }
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }

    pub fn source(&self) -> &KeyRingSource {
        &self.source
    }

    pub fn active(&self) -> &MasterKey {
        &self.keys[0]
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    pub fn contains(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    fn get(&self, id: &str) -> Result<&MasterKey, CryptoError> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownMasterKey(id.to_owned()))
    }

    /// A new ring with `key` active and every current key kept.
    pub fn with_new_active(&self, key: MasterKey) -> Result<Self, CryptoError> {
        let mut keys = vec![key];
        keys.extend(self.keys.iter().cloned());
        Self::new(keys, self.source.clone())
    }

    /// Seals a data key under the active master key, bound to where it will be stored.
    pub fn wrap(&self, data_key: &SymmetricKey, aad: &[u8]) -> Result<(String, Vec<u8>), CryptoError> {
        let active = self.active();
        let wrapped = aead::seal(&active.key, data_key.expose(), &wrap_aad(&active.id, aad))?;
        Ok((active.id.clone(), wrapped))
    }

    pub fn unwrap(&self, kek_id: &str, wrapped: &[u8], aad: &[u8]) -> Result<SymmetricKey, CryptoError> {
        let key = self.get(kek_id)?;
        let plain = aead::open(&key.key, wrapped, &wrap_aad(kek_id, aad))?;
        if plain.len() != KEY_LEN {
            return Err(CryptoError::Malformed);
        }
        SymmetricKey::from_slice(plain.expose())
    }

    pub fn make_check(key: &MasterKey) -> Result<KeyCheck, CryptoError> {
        Ok(KeyCheck {
            kek_id: key.id.clone(),
            sealed: aead::seal(&key.key, CHECK_PLAINTEXT, &check_aad(&key.id))?,
        })
    }

    /// Compares the ring with what the database says it was sealed with, before anything is
    /// read or written. Returns the checks to store for ring keys the database has not seen.
    ///
    /// Refuses when a ring key does not open its own check (wrong key material), when the
    /// database was set up with keys and the ring shares none of them (wrong ring), or when a
    /// data key is wrapped by a master key the ring lacks (it could never be opened).
    pub fn reconcile(&self, checks: &[KeyCheck], kek_ids_in_use: &[String]) -> Result<Vec<KeyCheck>, CryptoError> {
        let mut known = 0;
        for check in checks {
            if let Ok(key) = self.get(&check.kek_id) {
                let opened = aead::open(&key.key, &check.sealed, &check_aad(&key.id));
                if opened.map(|p| p.expose() == CHECK_PLAINTEXT) != Ok(true) {
                    return Err(CryptoError::KeyRing(format!(
                        "master key `{}` does not open its key-check record; the key material is wrong",
                        key.id
                    )));
                }
                known += 1;
            }
        }
        if !checks.is_empty() && known == 0 {
            let stored: Vec<&str> = checks.iter().map(|c| c.kek_id.as_str()).collect();
            return Err(CryptoError::KeyRing(format!(
                "wrong master key: this database was sealed with master key(s) {stored:?}, and the configured key ring holds {:?}",
                self.ids().collect::<Vec<_>>()
            )));
        }
        let missing: Vec<&String> = kek_ids_in_use.iter().filter(|id| !self.contains(id)).collect();
        if !missing.is_empty() {
            return Err(CryptoError::KeyRing(format!(
                "secrets in this database are sealed under master key(s) {missing:?}, which the configured key ring lacks; add them back to the ring"
            )));
        }
        self.keys
            .iter()
            .filter(|k| !checks.iter().any(|c| c.kek_id == k.id))
            .map(Self::make_check)
            .collect()
    }
}

fn wrap_aad(kek_id: &str, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + kek_id.len() + aad.len());
    out.extend_from_slice(b"credgate/dek/");
    out.extend_from_slice(kek_id.as_bytes());
    out.push(b'/');
    out.extend_from_slice(aad);
    out
}

fn check_aad(kek_id: &str) -> Vec<u8> {
    format!("credgate/key-check/{kek_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&MasterKey]) -> KeyRing {
        KeyRing::new(keys.iter().map(|k| (*k).clone()).collect(), KeyRingSource::Memory).unwrap()
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = MasterKey::from_base64(&STANDARD.encode([1u8; 32])).unwrap();
        let a2 = MasterKey::from_base64(&STANDARD.encode([1u8; 32])).unwrap();
        let b = MasterKey::from_base64(&STANDARD.encode([2u8; 32])).unwrap();
        assert_eq!(a.id(), a2.id());
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
    }

    #[test]
    fn parse_accepts_lines_commas_and_comments() {
        let k1 = STANDARD.encode([1u8; 32]);
        let k2 = STANDARD.encode([2u8; 32]);
        let ring = KeyRing::parse(&format!("# comment\n{k1}, {k2}\n\n"), KeyRingSource::Memory).unwrap();
        assert_eq!(ring.ids().count(), 2);
        assert_eq!(ring.active().id(), MasterKey::from_base64(&k1).unwrap().id());
        assert!(KeyRing::parse("", KeyRingSource::Memory).is_err());
        assert!(KeyRing::parse("bm90IGEga2V5", KeyRingSource::Memory).is_err());
        assert!(KeyRing::parse(&format!("{k1},{k1}"), KeyRingSource::Memory).is_err());
    }

    #[test]
    fn older_keys_still_unwrap_after_rotation() {
        let old = MasterKey::generate().unwrap();
        let dek = SymmetricKey::generate().unwrap();
        let (kek, wrapped) = ring(&[&old]).wrap(&dek, b"s|1").unwrap();
        let rotated = ring(&[&old]).with_new_active(MasterKey::generate().unwrap()).unwrap();
        assert_ne!(rotated.active().id(), old.id());
        assert_eq!(rotated.unwrap(&kek, &wrapped, b"s|1").unwrap().expose(), dek.expose());
        assert!(
            rotated.unwrap(&kek, &wrapped, b"s|2").is_err(),
            "wrapped key moved to another version"
        );
    }

    #[test]
    fn reconcile_catches_a_wrong_key() {
        let right = MasterKey::generate().unwrap();
        let wrong = MasterKey::generate().unwrap();
        let checks = ring(&[&right]).reconcile(&[], &[]).unwrap();
        assert_eq!(checks.len(), 1);
        let in_use = vec![right.id().to_owned()];
        assert!(ring(&[&right]).reconcile(&checks, &in_use).unwrap().is_empty());
        let err = ring(&[&wrong]).reconcile(&checks, &in_use).unwrap_err();
        assert!(err.to_string().contains("wrong master key"), "{err}");
        // Data sealed under a key the ring lacks is refused even if the ring knows another key.
        let both = ring(&[&wrong, &right]).reconcile(&checks, &in_use).unwrap();
        assert_eq!(both.len(), 1, "the new key gets its own check");
        let err = ring(&[&wrong])
            .reconcile(&[checks[0].clone(), both[0].clone()], &in_use)
            .unwrap_err();
        assert!(err.to_string().contains("lacks"), "{err}");
    }

    #[test]
    fn reconcile_catches_forged_check_ids() {
        let right = MasterKey::generate().unwrap();
        let mut checks = ring(&[&right]).reconcile(&[], &[]).unwrap();
        checks[0].sealed[5] ^= 1;
        assert!(ring(&[&right]).reconcile(&checks, &[]).is_err());
    }

    #[test]
    fn file_round_trip_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let ring = ring(&[&MasterKey::generate().unwrap(), &MasterKey::generate().unwrap()]);
        ring.save_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = KeyRing::load_file(&path).unwrap();
        assert_eq!(back.ids().collect::<Vec<_>>(), ring.ids().collect::<Vec<_>>());
    }
}
