//! What `sfs-client ls` and `sfs-client stat` print: names, or with `--long` what `ls -l`
//! users expect; a file's attributes as `stat` words them.
//!
//! `ls PATH` lists a directory's entries (or names a file), sorted by name. `--long` prints,
//! one per line, the type and permission bits (`drwxr-xr-x`, setuid/setgid/sticky as `ls`
//! shows them), the link count, the owner (the server's mapped user name, else the uid), the
//! size in bytes, the modification time in UTC (`YYYY-MM-DD HH:MM`, as
//! `ls -l --time-style=long-iso` but UTC, so the listing does not depend on the time zone of
//! the machine that prints it) and the name, in aligned columns.

use sfs_proto::messages::{Attr, FileType};

use crate::client::{CResult, Client};

/// One entry of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Name in its directory (the path given, for a file).
    pub name: String,
    /// Its attributes.
    pub attr: Attr,
}

/// The entries of directory `path` with their attributes, sorted by name; a file is listed
/// alone under the path given.
pub fn list(c: &Client, path: &str) -> CResult<Vec<Listed>> {
    let (fh, attr) = c.lookup_path(path)?;
    if attr.ftype != FileType::Directory {
        return Ok(vec![Listed {
            name: path.trim_matches('/').to_string(),
            attr,
        }]);
    }
    let mut out = Vec::new();
    for e in c.readdir(&fh)? {
        let (_, attr) = c.lookup(&fh, &e.name)?;
        out.push(Listed { name: e.name, attr });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `ls -l`'s first column: the type, then the permission bits.
pub fn mode_string(ftype: FileType, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match ftype {
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::Regular => '-',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
        FileType::CharDev => 'c',
        FileType::BlockDev => 'b',
        FileType::Other => '?',
    });
    // (read, write, execute bits, the special bit that shares the execute column, its
    // letter with and without execute).
    let triads = [
        (0o400, 0o200, 0o100, 0o4000, 's', 'S'),
        (0o040, 0o020, 0o010, 0o2000, 's', 'S'),
        (0o004, 0o002, 0o001, 0o1000, 't', 'T'),
    ];
    for (r, w, x, special, on, off) in triads {
        s.push(if mode & r != 0 { 'r' } else { '-' });
        s.push(if mode & w != 0 { 'w' } else { '-' });
        s.push(match (mode & x != 0, mode & special != 0) {
            (true, true) => on,
            (false, true) => off,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// The long listing, one aligned line per entry.
pub fn long(entries: &[Listed]) -> String {
    let owner = |a: &Attr| {
        if a.owner.is_empty() {
            a.uid.to_string()
        } else {
            a.owner.clone()
        }
    };
    let w_links = entries.iter().map(|e| e.attr.nlink.to_string().len()).max();
    let w_owner = entries.iter().map(|e| owner(&e.attr).len()).max();
    let w_size = entries.iter().map(|e| e.attr.size.to_string().len()).max();
    let (w_links, w_owner, w_size) = (
        w_links.unwrap_or(1),
        w_owner.unwrap_or(1),
        w_size.unwrap_or(1),
    );
    let mut out = String::new();
    for e in entries {
        let t = edge::time::Utc::from_unix(e.attr.mtime.secs);
        out.push_str(&format!(
            "{} {:>w_links$} {:<w_owner$} {:>w_size$} {:04}-{:02}-{:02} {:02}:{:02} {}\n",
            mode_string(e.attr.ftype, e.attr.mode),
            e.attr.nlink,
            owner(&e.attr),
            e.attr.size,
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            e.name
        ));
    }
    out
}

/// The type as `stat` words it.
pub fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "fifo",
        FileType::CharDev => "character special file",
        FileType::BlockDev => "block special file",
        FileType::Socket => "socket",
        FileType::Other => "other",
    }
}

/// What `sfs-client stat` prints: type, mode, size, file id, link count, ids and owner,
/// and the modification time in UTC and in seconds since the epoch, one per line.
pub fn stat(a: &Attr) -> String {
    format!(
        "type {}\nmode {} ({:o})\nsize {}\nfileid {}\nnlink {}\nuid {} gid {} owner {}\nmtime {} UTC ({}.{:09} s since the epoch)\n",
        type_name(a.ftype),
        mode_string(a.ftype, a.mode),
        a.mode,
        a.size,
        a.fileid,
        a.nlink,
        a.uid,
        a.gid,
        if a.owner.is_empty() { "-" } else { &a.owner },
        edge::time::Utc::from_unix(a.mtime.secs),
        a.mtime.secs,
        a.mtime.nsecs
    )
}

/// The short listing: one name per line (as `ls` prints when its output is not a terminal).
pub fn short(entries: &[Listed]) -> String {
    entries.iter().map(|e| format!("{}\n", e.name)).collect()
}

#[cfg(test)]
mod tests {
    use sfs_proto::messages::Time;

    use super::*;

    fn attr(ftype: FileType, mode: u32, size: u64, owner: &str, mtime: i64) -> Attr {
        Attr {
            ftype,
            mode,
            nlink: if ftype == FileType::Directory { 12 } else { 1 },
            uid: 1000,
            gid: 1000,
            owner: owner.into(),
            size,
            fileid: 10_109_087,
            rdev: 0,
            atime: Time::default(),
            mtime: Time {
                secs: mtime,
                nsecs: 0,
            },
            ctime: Time::default(),
        }
    }

    #[test]
    fn modes_as_ls_prints_them() {
        assert_eq!(mode_string(FileType::Regular, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(FileType::Directory, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(FileType::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(FileType::Regular, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileType::Regular, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(FileType::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileType::Other, 0), "?---------");
    }

    #[test]
    fn long_lines_show_size_not_file_id() {
        let entries = [
            Listed {
                name: "big.bin".into(),
                attr: attr(FileType::Regular, 0o644, 50_000_000, "alice", 1_796_000_000),
            },
            Listed {
                name: "sub".into(),
                attr: attr(FileType::Directory, 0o755, 4096, "", 0),
            },
        ];
        let out = long(&entries);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "-rw-r--r--  1 alice 50000000 2026-11-30 00:53 big.bin"
        );
        assert_eq!(
            lines[1],
            "drwxr-xr-x 12 1000      4096 1970-01-01 00:00 sub"
        );
        assert!(!out.contains("10109087"));
        assert_eq!(short(&entries), "big.bin\nsub\n");
        assert_eq!(long(&[]), "");
    }

    #[test]
    fn stat_words_every_attribute() {
        let mut a = attr(FileType::Regular, 0o4755, 123, "alice", 1_796_000_000);
        a.mtime.nsecs = 5;
        assert_eq!(
            stat(&a),
            "type regular file\nmode -rwsr-xr-x (4755)\nsize 123\nfileid 10109087\nnlink 1\n\
             uid 1000 gid 1000 owner alice\n\
             mtime 2026-11-30 00:53:20 UTC (1796000000.000000005 s since the epoch)\n"
        );
        let d = attr(FileType::Directory, 0o755, 4096, "", 0);
        assert!(stat(&d).starts_with("type directory\nmode drwxr-xr-x (755)\n"));
        assert!(stat(&d).contains("owner -\n"), "{}", stat(&d));
    }
}
