//! POSIX permission checks for the identity a connection acts as.
//!
//! The server acts for each authenticated user as the local identity the uid mapping
//! table gives it ([`Ident`]), and checks every operation as a POSIX file system
//! would for that identity, whatever uid the server process runs as:
//! 1. Mode bits: the owner class if the uid matches, else the group class if the file's
//!    group is the caller's primary or one of its supplementary groups, else other. uid 0 may read and write anything and execute anything that
//!    has an execute bit (or is a directory).
//! 2. Directory entries: creating or removing a name needs write and search on the
//!    directory; in a sticky directory only the entry's owner, the directory's owner or
//!    root may remove or rename it.
//! 3. Attributes: only the owner or root changes the mode or sets explicit times; only
//!    root gives a file away; the owner may set the group to one of its groups; setting
//!    both times to "now" needs ownership or write permission. A non-root chmod of a
//!    file whose group is not one of the caller's clears set-group-id, and a non-root
//!    chown clears set-user-id and set-group-id, as Linux does. Clearing only set-id
//!    bits is allowed to anyone who may write the file (what the kernel asks for when a
//!    non-owner writes a set-id file, [`killpriv_mode`]).
//! 4. READ and WRITE on an open file allow the owner regardless of the mode bits (the
//!    NFS "owner override"), so a file created read-only can still be written through
//!    the descriptor that created it.
//!
//! Denials are [`Status::Access`] (mode bits) or [`Status::Perm`] (ownership rules),
//! the errno a POSIX file system returns in each case.

use sfs_proto::messages::{
    SetAttrs, SetTime, Status, ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, MAX_GROUPS,
};

/// The local identity a connection or a call acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups: the first `ngroups` entries.
    groups: [u32; MAX_GROUPS],
    /// How many of `groups` are set.
    ngroups: u8,
}

impl Ident {
    /// The unprivileged identity of a connection whose user has no mapping.
    pub const NOBODY: Ident = Ident::new(65534, 65534);

    /// The privileged identity.
    pub const ROOT: Ident = Ident::new(0, 0);

    /// `uid` and `gid` without supplementary groups.
    pub const fn new(uid: u32, gid: u32) -> Ident {
        Ident {
            uid,
            gid,
            groups: [0; MAX_GROUPS],
            ngroups: 0,
        }
    }

    /// `uid`, `gid` and the supplementary `groups` (past [`MAX_GROUPS`] ignored).
    pub fn with_groups(uid: u32, gid: u32, groups: &[u32]) -> Ident {
        let mut id = Ident::new(uid, gid);
        let n = groups.len().min(MAX_GROUPS);
        id.groups[..n].copy_from_slice(&groups[..n]);
        id.ngroups = n as u8;
        id
    }

    /// The supplementary groups.
    pub fn groups(&self) -> &[u32] {
        &self.groups[..self.ngroups as usize]
    }

    /// uid 0.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Is `gid` the primary or a supplementary group?
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups().contains(&gid)
    }
}

/// The attributes a check looks at.
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl Owner {
    /// From a `stat`.
    pub fn of(st: &libc::stat) -> Owner {
        Owner {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
        }
    }

    fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// The subset of `mask` ([`ACCESS_READ`] | [`ACCESS_WRITE`] | [`ACCESS_EXEC`]) that
/// `who` holds on a file with these attributes.
pub fn granted(o: Owner, who: Ident, mask: u32) -> u32 {
    let mask = mask & (ACCESS_READ | ACCESS_WRITE | ACCESS_EXEC);
    if who.is_root() {
        let any_x = o.mode & 0o111 != 0 || o.is_dir();
        return mask & !(if any_x { 0 } else { ACCESS_EXEC });
    }
    let class = if o.uid == who.uid {
        (o.mode >> 6) & 7
    } else if who.in_group(o.gid) {
        (o.mode >> 3) & 7
    } else {
        o.mode & 7
    };
    mask & class
}

/// `who` must hold every bit of `mask`.
pub fn check(o: Owner, who: Ident, mask: u32) -> Result<(), Status> {
    if granted(o, who, mask) == mask {
        Ok(())
    } else {
        Err(Status::Access)
    }
}

/// READ or WRITE through an open file: mode bits, or the owner.
pub fn check_io(o: Owner, who: Ident, mask: u32) -> Result<(), Status> {
    if o.uid == who.uid {
        return Ok(());
    }
    check(o, who, mask)
}

/// Adding or removing an entry of directory `dir`.
pub fn check_dir_write(dir: Owner, who: Ident) -> Result<(), Status> {
    check(dir, who, ACCESS_WRITE | ACCESS_EXEC)
}

/// Removing (or renaming away) `victim` from `dir`: write and search on the directory
/// and, in a sticky directory, ownership of one of them.
pub fn check_delete(dir: Owner, victim: Owner, who: Ident) -> Result<(), Status> {
    check_dir_write(dir, who)?;
    let sticky = dir.mode & libc::S_ISVTX != 0;
    if sticky && !who.is_root() && victim.uid != who.uid && dir.uid != who.uid {
        return Err(Status::Perm);
    }
    Ok(())
}

/// Check a SETATTR and return the mode to apply, if any (set-id bits cleared where
/// POSIX clears them).
pub fn check_setattr(o: Owner, who: Ident, a: &SetAttrs) -> Result<Option<u32>, Status> {
    let owner = who.is_root() || o.uid == who.uid;
    // A writer's truncate may come with the set-id bits it clears (Linux's
    // `file_remove_privs`): that mode change needs write permission, not ownership.
    let killpriv = killpriv_mode(o, a.mode);
    if killpriv.is_some() && !owner {
        check_io(o, who, ACCESS_WRITE)?;
    }
    if a.uid.is_some_and(|u| u != o.uid) && !who.is_root() {
        return Err(Status::Perm);
    }
    if let Some(g) = a.gid {
        if !who.is_root() && (o.uid != who.uid || (!who.in_group(g) && g != o.gid)) {
            return Err(Status::Perm);
        }
    }
    let explicit_time =
        matches!(a.atime, Some(SetTime::At(_))) || matches!(a.mtime, Some(SetTime::At(_)));
    if explicit_time && !owner {
        return Err(Status::Perm);
    }
    if (a.atime.is_some() || a.mtime.is_some()) && !owner {
        check(o, who, ACCESS_WRITE)?;
    }
    if a.size.is_some() {
        check_io(o, who, ACCESS_WRITE)?;
    }
    let mut mode = match a.mode {
        Some(m) if killpriv.is_some() => Some(m),
        Some(_) if !owner => return Err(Status::Perm),
        Some(m) => {
            let group = a.gid.unwrap_or(o.gid);
            if !who.is_root() && !who.in_group(group) && !o.is_dir() {
                Some(m & !libc::S_ISGID)
            } else {
                Some(m)
            }
        }
        None => None,
    };
    let chown = a.uid.is_some_and(|u| u != o.uid) || a.gid.is_some_and(|g| g != o.gid);
    if chown && !who.is_root() && !o.is_dir() && o.mode & (libc::S_ISUID | libc::S_ISGID) != 0 {
        let m = mode.unwrap_or(o.mode & 0o7777);
        mode = Some(m & !(libc::S_ISUID | libc::S_ISGID));
    }
    Ok(mode.map(|m| m & 0o7777))
}

/// `mode`, if it only clears set-user-id or set-group-id bits of a regular file.
pub fn killpriv_mode(o: Owner, mode: Option<u32>) -> Option<u32> {
    let m = mode? & 0o7777;
    let old = o.mode & 0o7777;
    let setid = libc::S_ISUID | libc::S_ISGID;
    let clears = m != old && m | setid == old | setid && m & !old == 0;
    (clears && o.mode & libc::S_IFMT == libc::S_IFREG).then_some(m)
}

/// The mode a WRITE by `who` leaves on a file of mode `mode`, if it changes: a
/// non-root writer clears set-user-id, and set-group-id when group execute is set
/// (as Linux's `file_remove_privs`).
pub fn mode_after_write(mode: u32, who: Ident) -> Option<u32> {
    if who.is_root() {
        return None;
    }
    let mut m = mode & 0o7777;
    m &= !libc::S_ISUID;
    if m & 0o010 != 0 {
        m &= !libc::S_ISGID;
    }
    (m != mode & 0o7777).then_some(m)
}

#[cfg(test)]
mod tests {
    use sfs_proto::messages::Time;

    use super::*;

    const ALICE: Ident = Ident::new(1000, 1000);
    const BOB: Ident = Ident::new(1001, 1000);
    const EVE: Ident = Ident::new(1002, 1002);

    fn file(mode: u32) -> Owner {
        Owner {
            mode: libc::S_IFREG | mode,
            uid: ALICE.uid,
            gid: ALICE.gid,
        }
    }

    fn dir(mode: u32) -> Owner {
        Owner {
            mode: libc::S_IFDIR | mode,
            ..file(0)
        }
    }

    #[test]
    fn classes_are_chosen_owner_then_group_then_other() {
        let f = file(0o640);
        assert_eq!(granted(f, ALICE, 7), ACCESS_READ | ACCESS_WRITE);
        assert_eq!(granted(f, BOB, 7), ACCESS_READ, "same group");
        assert_eq!(granted(f, EVE, 7), 0);
        // The owner class applies even when it grants less than the group's.
        assert_eq!(granted(file(0o070), ALICE, 7), 0);
        assert_eq!(check(f, EVE, ACCESS_READ), Err(Status::Access));
    }

    #[test]
    fn root_reads_and_writes_everything_but_executes_only_executables() {
        assert_eq!(granted(file(0), Ident::ROOT, 7), ACCESS_READ | ACCESS_WRITE);
        assert_eq!(granted(file(0o001), Ident::ROOT, 7), 7);
        assert_eq!(granted(dir(0), Ident::ROOT, 7), 7);
    }

    #[test]
    fn io_lets_the_owner_through_a_read_only_mode() {
        assert!(check_io(file(0o444), ALICE, ACCESS_WRITE).is_ok());
        assert_eq!(
            check_io(file(0o444), BOB, ACCESS_WRITE),
            Err(Status::Access)
        );
    }

    #[test]
    fn sticky_directories_protect_other_users_entries() {
        let tmp = Owner {
            uid: 0,
            gid: 0,
            ..dir(0o1777)
        };
        let alices = file(0o644);
        assert!(check_delete(tmp, alices, ALICE).is_ok());
        assert_eq!(check_delete(tmp, alices, BOB), Err(Status::Perm));
        assert!(check_delete(tmp, alices, Ident::ROOT).is_ok());
        assert!(check_delete(dir(0o777), alices, BOB).is_ok(), "not sticky");
        assert_eq!(
            check_delete(dir(0o755), alices, BOB),
            Err(Status::Access),
            "no write on the directory"
        );
    }

    #[test]
    fn setattr_follows_the_ownership_rules() {
        let f = file(0o644);
        let chmod = SetAttrs {
            mode: Some(0o600),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, ALICE, &chmod), Ok(Some(0o600)));
        assert_eq!(check_setattr(f, BOB, &chmod), Err(Status::Perm));
        let give = SetAttrs {
            uid: Some(BOB.uid),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, ALICE, &give), Err(Status::Perm));
        assert_eq!(check_setattr(f, Ident::ROOT, &give), Ok(None));
        let same_owner = SetAttrs {
            uid: Some(ALICE.uid),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, ALICE, &same_owner), Ok(None));
        let chgrp = |g| SetAttrs {
            gid: Some(g),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, ALICE, &chgrp(1000)), Ok(None));
        assert_eq!(check_setattr(f, ALICE, &chgrp(5)), Err(Status::Perm));
        assert_eq!(check_setattr(f, Ident::ROOT, &chgrp(5)), Ok(None));
    }

    #[test]
    fn setattr_times_and_size() {
        let f = file(0o664);
        let now = SetAttrs {
            atime: Some(SetTime::Now),
            mtime: Some(SetTime::Now),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, BOB, &now), Ok(None), "group may write");
        assert_eq!(check_setattr(f, EVE, &now), Err(Status::Access));
        let at = SetAttrs {
            mtime: Some(SetTime::At(Time { secs: 5, nsecs: 0 })),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, BOB, &at), Err(Status::Perm));
        assert_eq!(check_setattr(f, ALICE, &at), Ok(None));
        let trunc = SetAttrs {
            size: Some(0),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, EVE, &trunc), Err(Status::Access));
        assert_eq!(check_setattr(file(0o444), ALICE, &trunc), Ok(None));
    }

    #[test]
    fn set_id_bits_are_cleared_as_linux_clears_them() {
        let f = Owner {
            gid: 7,
            ..file(0o2755)
        };
        let chmod = SetAttrs {
            mode: Some(0o2755),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, ALICE, &chmod), Ok(Some(0o755)));
        assert_eq!(check_setattr(f, Ident::ROOT, &chmod), Ok(Some(0o2755)));
        let suid = file(0o4755);
        let chgrp = SetAttrs {
            gid: Some(ALICE.gid),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(suid, ALICE, &chgrp), Ok(None), "no change");
        let moved = Owner { gid: 7, ..suid };
        assert_eq!(check_setattr(moved, ALICE, &chgrp), Ok(Some(0o755)));
    }

    #[test]
    fn supplementary_groups_count_as_the_callers() {
        let f = file(0o640);
        let eve_in_alices_group = Ident::with_groups(EVE.uid, EVE.gid, &[5, ALICE.gid]);
        assert_eq!(granted(f, eve_in_alices_group, 7), ACCESS_READ);
        assert_eq!(granted(f, EVE, 7), 0);
        let mine = Owner {
            uid: EVE.uid,
            gid: EVE.gid,
            ..file(0o2755)
        };
        let chgrp = SetAttrs {
            gid: Some(5),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(mine, EVE, &chgrp), Err(Status::Perm));
        assert_eq!(
            check_setattr(mine, eve_in_alices_group, &chgrp),
            Ok(Some(0o755)),
            "a member may give its file to a group; set-id bits go"
        );
        let many: Vec<u32> = (0..100).collect();
        assert_eq!(Ident::with_groups(1, 1, &many).groups().len(), MAX_GROUPS);
    }

    #[test]
    fn writers_may_clear_set_id_bits_only() {
        let f = file(0o6775);
        let kill = |m| SetAttrs {
            mode: Some(m),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, BOB, &kill(0o2775)), Ok(Some(0o2775)));
        assert_eq!(check_setattr(f, BOB, &kill(0o775)), Ok(Some(0o775)));
        assert_eq!(check_setattr(f, BOB, &kill(0o6777)), Err(Status::Perm));
        assert_eq!(check_setattr(f, BOB, &kill(0o4775)), Ok(Some(0o4775)));
        assert_eq!(check_setattr(f, EVE, &kill(0o775)), Err(Status::Access));
        let truncate_kill = SetAttrs {
            mode: Some(0o775),
            size: Some(0),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, BOB, &truncate_kill), Ok(Some(0o775)));
        let chown_kill = SetAttrs {
            mode: Some(0o775),
            uid: Some(BOB.uid),
            ..SetAttrs::default()
        };
        assert_eq!(check_setattr(f, BOB, &chown_kill), Err(Status::Perm));
        assert_eq!(mode_after_write(0o6775, BOB), Some(0o775));
        assert_eq!(
            mode_after_write(0o6745, BOB),
            Some(0o2745),
            "no g+x: sgid stays"
        );
        assert_eq!(mode_after_write(0o6775, Ident::ROOT), None);
        assert_eq!(mode_after_write(0o644, BOB), None);
    }
}
