//! The server's key table: who may connect, with which key, acting as which local user.
//!
//! Invariants:
//! 1. The key table maps a user name to `(uid, gid, key)`: this is also SFS's uid
//!    mapping table (the local identity a remote user acts as). User names obey
//!    [`check_user_name`]; keys are [`Key`]s.
//! 2. The table is written with mode 0600, atomically (temp file + rename), so a crash
//!    never leaves a half-written table; `keygen` writes the user's key file the same
//!    way and only once the table is saved, so a failure leaves neither changed.
//! 3. An entry may be marked `trusted` (a fifth field): its key may then act for the
//!    local callers a client names per call (NFS's trusted-host model, see
//!    [`crate::dispatch`]). Entries are untrusted unless marked; tables written before
//!    the field existed load unchanged.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sfs_proto::key::{check_user_name, tmp_beside, write_private, Key};

/// One user's entry: the local identity (uid mapping) and the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEntry {
    /// Local uid the user acts as.
    pub uid: u32,
    /// Local gid the user acts as.
    pub gid: u32,
    /// The user's secret key.
    pub key: Key,
    /// The key may act for the local uids and gids a client names per call.
    pub trusted: bool,
}

/// The server's key table (and uid mapping table). File format, one user per line:
/// `name uid gid hexkey [trusted]`; `#` starts a comment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyTable {
    users: BTreeMap<String, UserEntry>,
}

impl KeyTable {
    /// Load a key table; a missing file is an error (use [`KeyTable::load_or_empty`]).
    pub fn load(path: &Path) -> Result<KeyTable> {
        let s = fs::read_to_string(path)
            .with_context(|| format!("reading key table {}", path.display()))?;
        KeyTable::parse(&s).with_context(|| format!("parsing key table {}", path.display()))
    }

    /// Load a key table, or an empty one when the file does not exist.
    pub fn load_or_empty(path: &Path) -> Result<KeyTable> {
        if path.exists() {
            KeyTable::load(path)
        } else {
            Ok(KeyTable::default())
        }
    }

    /// Parse the text form.
    pub fn parse(s: &str) -> Result<KeyTable> {
        let mut t = KeyTable::default();
        for (i, line) in s.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let trusted = match f.get(4) {
                None => false,
                Some(&"trusted") if f.len() == 5 => true,
                _ => bail!("line {}: expected `name uid gid hexkey [trusted]`", i + 1),
            };
            if f.len() < 4 {
                bail!("line {}: expected `name uid gid hexkey [trusted]`", i + 1);
            }
            check_user_name(f[0]).with_context(|| format!("line {}", i + 1))?;
            let uid: u32 = f[1]
                .parse()
                .with_context(|| format!("line {}: uid", i + 1))?;
            let gid: u32 = f[2]
                .parse()
                .with_context(|| format!("line {}: gid", i + 1))?;
            let key = Key::from_hex(f[3]).with_context(|| format!("line {}", i + 1))?;
            if t.users
                .insert(
                    f[0].to_string(),
                    UserEntry {
                        uid,
                        gid,
                        key,
                        trusted,
                    },
                )
                .is_some()
            {
                bail!("line {}: duplicate user {}", i + 1, f[0]);
            }
        }
        Ok(t)
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = String::from("# sfs key table: name uid gid key\n");
        for (name, e) in &self.users {
            s.push_str(&format!(
                "{} {} {} {}{}\n",
                name,
                e.uid,
                e.gid,
                e.key.to_hex(),
                if e.trusted { " trusted" } else { "" }
            ));
        }
        s
    }

    /// Save atomically with mode 0600 (a failed save leaves the old table and no temporary
    /// file).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = tmp_beside(path);
        let r = write_private(&tmp, self.to_text().as_bytes())
            .with_context(|| format!("writing the key table {}", path.display()))
            .and_then(|()| {
                fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
            });
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r
    }

    /// Add or replace a user.
    pub fn insert(&mut self, name: &str, entry: UserEntry) -> Result<()> {
        check_user_name(name)?;
        self.users.insert(name.to_string(), entry);
        Ok(())
    }

    /// Mark `name`'s key trusted (or not); an unknown user is an error.
    pub fn set_trusted(&mut self, name: &str, trusted: bool) -> Result<()> {
        match self.users.get_mut(name) {
            Some(e) => {
                e.trusted = trusted;
                Ok(())
            }
            None => bail!("no user {name} in the key table"),
        }
    }

    /// Look a user up.
    pub fn get(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name)
    }

    /// The user name mapped to a local uid (first match in name order).
    pub fn name_of_uid(&self, uid: u32) -> Option<&str> {
        self.users
            .iter()
            .find(|(_, e)| e.uid == uid)
            .map(|(n, _)| n.as_str())
    }

    /// Reverse uid mapping: each mapped uid to its first user in name order.
    pub fn uid_names(&self) -> std::collections::HashMap<u32, String> {
        let mut m = std::collections::HashMap::new();
        for (n, e) in &self.users {
            m.entry(e.uid).or_insert_with(|| n.clone());
        }
        m
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// What `sfs-server keygen` is asked to do.
#[derive(Clone, Debug)]
pub struct Keygen<'a> {
    /// The user to add.
    pub user: &'a str,
    /// The server's key table (created when missing).
    pub keys: &'a Path,
    /// Where the user's key is written.
    pub key_file: &'a Path,
    /// The local uid the user acts as.
    pub uid: u32,
    /// The local gid the user acts as.
    pub gid: u32,
    /// Replace an existing entry for `user` and an existing `key_file`.
    pub force: bool,
    /// The key may act for the client host's local users (see [`UserEntry::trusted`]).
    pub trusted: bool,
}

/// The uid and gid of this process: keygen's default identity for a new user.
pub fn own_ids() -> (u32, u32) {
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// What [`Keygen::run`] did.
#[derive(Clone, Debug)]
pub struct Added {
    /// The new key.
    pub key: Key,
    /// The user had an entry, now replaced (`force`).
    pub replaced: bool,
}

impl Keygen<'_> {
    /// Creates a random key for the user, adds it to the key table and writes the key
    /// file, both 0600.
    ///
    /// Without `force`, an existing entry for the user or an existing key file is an error
    /// and nothing is written. The table is replaced atomically and the key file is written
    /// beside its final name first, then renamed into place once the table is saved: a
    /// failure leaves the table, the key file and the directory as they were (no stray key
    /// file).
    pub fn run(&self) -> Result<Added> {
        check_user_name(self.user)?;
        let mut table = KeyTable::load_or_empty(self.keys)?;
        let replaced = table.get(self.user).is_some();
        if replaced && !self.force {
            bail!(
                "user {} is already in {}; pass --force to replace the key",
                self.user,
                self.keys.display()
            );
        }
        if self.key_file.exists() && !self.force {
            bail!(
                "key file {} exists; pass --force to replace it",
                self.key_file.display()
            );
        }
        let key = Key::generate();
        let tmp = tmp_beside(self.key_file);
        write_private(&tmp, format!("{}\n", key.to_hex()).as_bytes())
            .with_context(|| format!("writing the key file {}", self.key_file.display()))?;
        let result = table
            .insert(
                self.user,
                UserEntry {
                    uid: self.uid,
                    gid: self.gid,
                    key: key.clone(),
                    trusted: self.trusted,
                },
            )
            .and_then(|()| table.save(self.keys))
            .and_then(|()| {
                fs::rename(&tmp, self.key_file)
                    .with_context(|| format!("renaming into {}", self.key_file.display()))
            });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        Ok(Added { key, replaced })
    }
}

/// `sfs-server keygen` with the defaults: this process's uid and gid, no overwrite.
pub fn keygen(user: &str, keys: &Path, key_file: &Path) -> Result<Key> {
    let (uid, gid) = own_ids();
    let k = Keygen {
        user,
        keys,
        key_file,
        uid,
        gid,
        force: false,
        trusted: false,
    };
    Ok(k.run()?.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keygen_writes_private_files_and_table() {
        let d = tempfile::tempdir().unwrap();
        let keys = d.path().join("keys");
        let kf = d.path().join("alice.key");
        let k1 = keygen("alice", &keys, &kf).unwrap();
        let kb = d.path().join("bob.key");
        let k2 = keygen("bob", &keys, &kb).unwrap();
        assert_ne!(k1, k2);
        assert_eq!(Key::read_file(&kf).unwrap(), k1);
        let mode = fs::metadata(&kf).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let t = KeyTable::load(&keys).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("alice").unwrap().key, k1);
        assert_eq!(t.get("bob").unwrap().key, k2);
        // Re-keying is refused without force, and changes nothing.
        let e = keygen("alice", &keys, &kf).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(KeyTable::load(&keys).unwrap().get("alice").unwrap().key, k1);
        assert_eq!(Key::read_file(&kf).unwrap(), k1);
        // Another user's key file is not overwritten either.
        let e = keygen("carol", &keys, &kb).unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
        assert_eq!(Key::read_file(&kb).unwrap(), k2);
        // With force, the entry and the file are replaced, with the uid/gid given.
        let added = Keygen {
            user: "alice",
            keys: &keys,
            key_file: &kf,
            uid: 4242,
            gid: 4343,
            force: true,
            trusted: false,
        }
        .run()
        .unwrap();
        assert!(added.replaced);
        let t = KeyTable::load(&keys).unwrap();
        assert_eq!(t.len(), 2);
        let a = t.get("alice").unwrap();
        assert_eq!((a.uid, a.gid, &a.key), (4242, 4343, &added.key));
        assert_eq!(Key::read_file(&kf).unwrap(), added.key);
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "temporary files left: {names:?}");
    }

    #[test]
    fn a_failed_table_write_leaves_no_key_file() {
        let d = tempfile::tempdir().unwrap();
        let kf = d.path().join("alice.key");
        // The key table's directory does not exist: the table cannot be written.
        let keys = d.path().join("missing/keys");
        assert!(keygen("alice", &keys, &kf).is_err());
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            0,
            "a stray file was left"
        );
    }

    #[test]
    fn bad_lines_rejected() {
        assert!(KeyTable::parse("alice 1 2").is_err());
        let k = Key::generate().to_hex();
        assert!(KeyTable::parse(&format!("a 1 1 {k}\na 2 2 {k}\n")).is_err());
        let t = KeyTable::parse(&format!("# c\n\na 1 1 {k}\n")).unwrap();
        assert_eq!(t.name_of_uid(1), Some("a"));
    }

    #[test]
    fn trusted_is_an_opt_in_fifth_field() {
        let k = Key::generate().to_hex();
        let old = KeyTable::parse(&format!("a 1 1 {k}\n")).unwrap();
        assert!(!old.get("a").unwrap().trusted, "old tables: untrusted");
        let mut t = KeyTable::parse(&format!("a 1 1 {k} trusted\nb 2 2 {k}\n")).unwrap();
        assert!(t.get("a").unwrap().trusted);
        assert!(!t.get("b").unwrap().trusted);
        assert_eq!(KeyTable::parse(&t.to_text()).unwrap(), t);
        assert!(KeyTable::parse(&format!("a 1 1 {k} yes\n")).is_err());
        assert!(KeyTable::parse(&format!("a 1 1 {k} trusted x\n")).is_err());
        t.set_trusted("b", true).unwrap();
        assert!(t.get("b").unwrap().trusted);
        assert!(t.set_trusted("nobody", true).is_err());
    }
}
