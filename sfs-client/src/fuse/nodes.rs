//! The kernel's inodes and the server's handles behind them.
//!
//! Invariants:
//! 1. A kernel node id is the server's file id, except that the export root is node
//!    [`ROOT`] (FUSE's fixed root id) and a file whose id is 1 takes the root's file id
//!    ([`Nodes::node_of`] is a bijection). Hard links are therefore one node, as the
//!    kernel expects, and `st_ino` stays the server's file id.
//! 2. Every node the kernel may still name (its lookup count is above zero, or it is
//!    the root) is in the table with the directory and name it was last seen under, so
//!    a handle that went stale (renamed parent, server restart) can be found again by
//!    looking the name up from the root down ([`Nodes::path_to`]).
//!    A hard-linked file also keeps its other names seen (at most [`MAX_ALIASES`]), so
//!    removing the name it was last seen under leaves it reachable by another.
//! 3. A handle is valid for one connection epoch only: after a reconnect the server's
//!    handle key is new, so every node resolves again before use.

use std::collections::HashMap;

use sfs_proto::messages::{Fh, FileType};

/// FUSE's root node id.
pub const ROOT: u64 = 1;

/// Most other names (hard links) remembered per node.
pub const MAX_ALIASES: usize = 8;

/// The kernel node id of server file id `fileid` when the export root's is
/// `root_fileid` (invariant 1).
pub fn node_of(root_fileid: u64, fileid: u64) -> u64 {
    if fileid == root_fileid {
        ROOT
    } else if fileid == ROOT {
        root_fileid
    } else {
        fileid
    }
}

/// What the table knows about one kernel node.
#[derive(Clone, Debug)]
pub struct Node {
    /// The server's file id.
    pub fileid: u64,
    /// Its type.
    pub ftype: FileType,
    /// Its handle and the connection epoch it was issued in.
    pub fh: Option<(Fh, u64)>,
    /// Node id of the directory it was last seen in (itself for the root).
    pub parent: u64,
    /// Its name there.
    pub name: String,
    /// Other (directory, name) pairs the node was seen under: its hard links.
    pub aliases: Vec<(u64, String)>,
    /// Lookups the kernel holds (entries replied minus forgotten).
    pub lookups: u64,
}

/// The node table.
#[derive(Debug)]
pub struct Nodes {
    /// Nodes by kernel node id.
    map: HashMap<u64, Node>,
    /// The export root's file id.
    root_fileid: u64,
}

impl Nodes {
    /// A table holding only the root, whose file id is `root_fileid`.
    pub fn new(root_fileid: u64) -> Nodes {
        let mut map = HashMap::new();
        map.insert(
            ROOT,
            Node {
                fileid: root_fileid,
                ftype: FileType::Directory,
                fh: None,
                parent: ROOT,
                name: String::new(),
                aliases: Vec::new(),
                lookups: 1,
            },
        );
        Nodes { map, root_fileid }
    }

    /// The kernel node id of a server file id.
    pub fn node_of(&self, fileid: u64) -> u64 {
        node_of(self.root_fileid, fileid)
    }

    /// A node.
    pub fn get(&self, node: u64) -> Option<&Node> {
        self.map.get(&node)
    }

    /// The handle of `node` if it was issued in `epoch`.
    pub fn handle(&self, node: u64, epoch: u64) -> Option<Fh> {
        match &self.map.get(&node)?.fh {
            Some((fh, e)) if *e == epoch => Some(fh.clone()),
            _ => None,
        }
    }

    /// Record a handle for `node` (issued in `epoch`).
    pub fn set_handle(&mut self, node: u64, fh: Fh, epoch: u64) {
        if let Some(n) = self.map.get_mut(&node) {
            n.fh = Some((fh, epoch));
        }
    }

    /// Forget `node`'s handle: it resolves again by name before its next use.
    pub fn drop_handle(&mut self, node: u64) {
        if let Some(n) = self.map.get_mut(&node) {
            n.fh = None;
        }
    }

    /// The kernel got an entry for `name` in directory `parent`: remember it (one more
    /// lookup) and return its node id.
    pub fn entry(
        &mut self,
        parent: u64,
        name: &str,
        fileid: u64,
        ftype: FileType,
        fh: Fh,
        epoch: u64,
    ) -> u64 {
        let id = self.node_of(fileid);
        let n = self.map.entry(id).or_insert_with(|| Node {
            fileid,
            ftype,
            fh: None,
            parent,
            name: name.to_string(),
            aliases: Vec::new(),
            lookups: 0,
        });
        if id != ROOT {
            n.lookups += 1;
            if (n.parent, n.name.as_str()) != (parent, name) {
                let old = (n.parent, std::mem::replace(&mut n.name, name.to_string()));
                n.parent = parent;
                n.aliases
                    .retain(|(p, a)| (*p, a.as_str()) != (parent, name));
                if ftype != FileType::Directory && n.aliases.len() < MAX_ALIASES {
                    n.aliases.push(old);
                }
            }
        }
        n.ftype = ftype;
        n.fh = Some((fh, epoch));
        id
    }

    /// The kernel forgot `n` lookups of `node`; the node leaves when none are left.
    pub fn forget(&mut self, node: u64, n: u64) {
        if node == ROOT {
            return;
        }
        if let Some(x) = self.map.get_mut(&node) {
            x.lookups = x.lookups.saturating_sub(n);
            if x.lookups == 0 {
                self.map.remove(&node);
            }
        }
    }

    /// `name` in `parent` was renamed to `new_name` in `new_parent`: the node found
    /// under it moves, and its handle (which carries the old path) must resolve again.
    pub fn renamed(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) {
        for n in self.map.values_mut() {
            if n.parent == parent && n.name == name {
                n.parent = new_parent;
                n.name = new_name.to_string();
                n.fh = None;
            }
            for a in n.aliases.iter_mut() {
                if a.0 == parent && a.1 == name {
                    *a = (new_parent, new_name.to_string());
                }
            }
        }
    }

    /// `name` in `parent` is gone (removed, or replaced by a rename): a node last
    /// seen under it takes one of its other names, if it has one.
    pub fn unlinked(&mut self, parent: u64, name: &str) {
        for n in self.map.values_mut() {
            n.aliases
                .retain(|(p, a)| (*p, a.as_str()) != (parent, name));
            if n.parent == parent && n.name == name {
                if let Some((p, a)) = n.aliases.pop() {
                    (n.parent, n.name) = (p, a);
                    n.fh = None;
                }
            }
        }
    }

    /// Every node a directory change may have made stale: `dir`'s children (their
    /// handles carry its path, and the kernel's cached entries must go).
    pub fn children(&self, dir: u64) -> Vec<(u64, String)> {
        self.map
            .iter()
            .filter(|(id, n)| n.parent == dir && **id != ROOT)
            .map(|(id, n)| (*id, n.name.clone()))
            .collect()
    }

    /// Drop every handle (after a reconnect, or a directory rename that changed the
    /// paths below it).
    pub fn clear_handles(&mut self) {
        for n in self.map.values_mut() {
            n.fh = None;
        }
    }

    /// Node ids, for invalidating every cached attribute after a reconnect.
    pub fn ids(&self) -> Vec<u64> {
        self.map.keys().copied().collect()
    }

    /// The names from the root down to `node` (empty for the root), or `None` when a
    /// directory on the way has left the table.
    pub fn path_to(&self, node: u64) -> Option<Vec<(u64, String, u64)>> {
        let mut out = Vec::new();
        let mut cur = node;
        while cur != ROOT {
            let n = self.map.get(&cur)?;
            out.push((n.parent, n.name.clone(), cur));
            cur = n.parent;
            if out.len() > sfs_proto::fh::MAX_PATH {
                return None;
            }
        }
        out.reverse();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fh(b: u8) -> Fh {
        Fh(vec![b])
    }

    #[test]
    fn node_ids_are_a_bijection_with_the_root_at_one() {
        let t = Nodes::new(77);
        assert_eq!(t.node_of(77), ROOT);
        assert_eq!(t.node_of(1), 77, "file id 1 takes the root's id");
        assert_eq!(t.node_of(500), 500);
        for f in [1, 2, 77, 500] {
            let n = t.node_of(f);
            let back = [1, 2, 77, 500].into_iter().find(|g| t.node_of(*g) == n);
            assert_eq!(back, Some(f));
        }
    }

    #[test]
    fn lookups_are_counted_and_forgotten() {
        let mut t = Nodes::new(2);
        let a = t.entry(ROOT, "a", 10, FileType::Regular, fh(1), 0);
        assert_eq!(t.entry(ROOT, "a", 10, FileType::Regular, fh(1), 0), a);
        // A hard link: the same node under another name.
        assert_eq!(t.entry(ROOT, "b", 10, FileType::Regular, fh(2), 0), a);
        assert_eq!(t.get(a).unwrap().lookups, 3);
        assert_eq!(t.get(a).unwrap().name, "b", "last seen under b");
        t.unlinked(ROOT, "b");
        assert_eq!(t.get(a).unwrap().name, "a", "b removed: a names it again");
        t.unlinked(ROOT, "a");
        assert_eq!(t.get(a).unwrap().name, "a", "no other name known");
        t.forget(a, 2);
        assert!(t.get(a).is_some());
        t.forget(a, 1);
        assert!(t.get(a).is_none());
        t.forget(ROOT, 100);
        assert!(t.get(ROOT).is_some(), "the root stays");
    }

    #[test]
    fn handles_belong_to_an_epoch_and_renames_drop_them() {
        let mut t = Nodes::new(2);
        let d = t.entry(ROOT, "d", 20, FileType::Directory, fh(1), 3);
        let f = t.entry(d, "f", 21, FileType::Regular, fh(2), 3);
        assert_eq!(t.handle(f, 3), Some(fh(2)));
        assert_eq!(t.handle(f, 4), None, "a new connection needs new handles");
        assert_eq!(
            t.path_to(f).unwrap(),
            vec![(ROOT, "d".into(), d), (d, "f".into(), f)]
        );
        t.renamed(ROOT, "d", ROOT, "e");
        assert_eq!(t.handle(d, 3), None);
        assert_eq!(t.path_to(f).unwrap()[0].1, "e");
        assert_eq!(t.children(d), vec![(f, "f".to_string())]);
        t.forget(d, 1);
        assert_eq!(t.path_to(f), None, "its directory left the table");
        t.clear_handles();
        assert_eq!(t.handle(f, 3), None);
    }
}
