//! Unstable writes the server accepted but has not committed, kept until COMMIT.
//!
//! The mount replies to the kernel's WRITE only after the server accepted the data
//! (an UNSTABLE WRITE: in the server's page cache). Until a COMMIT with the same write
//! verifier succeeds, a server restart could lose it, so the data stays here (as NFS
//! clients keep their unstable pages) and is written again if the verifier changed.
//! Invariants:
//! 1. A file's log holds every byte acknowledged to the kernel since its last
//!    successful COMMIT, in write order, with the verifier each WRITE returned.
//! 2. The log is bounded: at its per-file or total bound, [`WriteLog::over`] asks the
//!    caller to COMMIT before it sends (and acknowledges) another WRITE.
//! 3. [`WriteLog::committed`] drops only what was written before the COMMIT was sent
//!    and carries the COMMIT's verifier: writes that raced the COMMIT stay.

use std::collections::HashMap;

/// One accepted WRITE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Sequence number (order of acknowledgement).
    pub seq: u64,
    /// File offset.
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
    /// Verifier the WRITE returned.
    pub verf: u64,
}

/// Uncommitted writes per file (keyed by node id).
#[derive(Debug)]
pub struct WriteLog {
    /// Pending writes per file.
    files: HashMap<u64, Vec<Pending>>,
    /// Bytes held in all files.
    total: usize,
    /// Next sequence number.
    seq: u64,
    /// Bytes one file may hold before a COMMIT is due.
    file_cap: usize,
    /// Bytes all files may hold before a COMMIT is due.
    total_cap: usize,
}

impl WriteLog {
    /// An empty log with these bounds.
    pub fn new(file_cap: usize, total_cap: usize) -> WriteLog {
        WriteLog {
            files: HashMap::new(),
            total: 0,
            seq: 0,
            file_cap,
            total_cap,
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.total
    }

    /// Record a WRITE the server accepted.
    pub fn record(&mut self, file: u64, offset: u64, data: &[u8], verf: u64) {
        self.seq += 1;
        self.files.entry(file).or_default().push(Pending {
            seq: self.seq,
            offset,
            data: data.to_vec(),
            verf,
        });
        self.total += data.len();
    }

    /// Is `file` (or the log) at or over its bound, so that a COMMIT is due before the
    /// next WRITE is acknowledged?
    pub fn over(&self, file: u64) -> bool {
        let held: usize = self
            .files
            .get(&file)
            .map_or(0, |v| v.iter().map(|p| p.data.len()).sum());
        held >= self.file_cap || self.total >= self.total_cap
    }

    /// Does `file` have writes to commit?
    pub fn dirty(&self, file: u64) -> bool {
        self.files.get(&file).is_some_and(|v| !v.is_empty())
    }

    /// Files with writes to commit.
    pub fn dirty_files(&self) -> Vec<u64> {
        self.files
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(f, _)| *f)
            .collect()
    }

    /// The sequence number a COMMIT sent now covers.
    pub fn mark(&self) -> u64 {
        self.seq
    }

    /// A COMMIT sent at `mark` returned `verf`: drop the writes it covers, or, if any of
    /// them got another verifier (the server restarted in between), return them all
    /// to be written again (they stay in the log).
    pub fn committed(&mut self, file: u64, mark: u64, verf: u64) -> Result<(), Vec<Pending>> {
        let Some(v) = self.files.get_mut(&file) else {
            return Ok(());
        };
        let covered = v.iter().take_while(|p| p.seq <= mark);
        if covered.clone().any(|p| p.verf != verf) {
            return Err(v.iter().filter(|p| p.seq <= mark).cloned().collect());
        }
        let n = covered.count();
        let freed: usize = v.drain(..n).map(|p| p.data.len()).sum();
        self.total -= freed;
        if v.is_empty() {
            self.files.remove(&file);
        }
        Ok(())
    }

    /// After re-sending `file`'s writes up to `mark`, each now carries `verf`.
    pub fn rewritten(&mut self, file: u64, mark: u64, verf: u64) {
        if let Some(v) = self.files.get_mut(&file) {
            for p in v.iter_mut().filter(|p| p.seq <= mark) {
                p.verf = verf;
            }
        }
    }

    /// Forget `file`'s writes (it was removed, or they cannot be saved).
    pub fn discard(&mut self, file: u64) {
        if let Some(v) = self.files.remove(&file) {
            self.total -= v.iter().map(|p| p.data.len()).sum::<usize>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_drops_what_it_covers_only() {
        let mut l = WriteLog::new(100, 1000);
        l.record(1, 0, b"abc", 7);
        let mark = l.mark();
        l.record(1, 3, b"de", 7);
        assert!(l.dirty(1) && !l.dirty(2));
        assert_eq!(l.committed(1, mark, 7), Ok(()));
        assert!(l.dirty(1), "the write after the COMMIT was sent stays");
        assert_eq!(l.total(), 2);
        assert_eq!(l.committed(1, l.mark(), 7), Ok(()));
        assert!(!l.dirty(1));
        assert_eq!(l.total(), 0);
    }

    #[test]
    fn a_new_verifier_returns_everything_to_write_again() {
        let mut l = WriteLog::new(100, 1000);
        l.record(1, 0, b"abc", 7);
        l.record(1, 10, b"xyz", 7);
        let mark = l.mark();
        let again = l.committed(1, mark, 8).unwrap_err();
        assert_eq!(
            again.iter().map(|p| p.offset).collect::<Vec<_>>(),
            vec![0, 10]
        );
        assert!(l.dirty(1), "kept until a COMMIT with a matching verifier");
        l.rewritten(1, mark, 8);
        assert_eq!(l.committed(1, mark, 8), Ok(()));
        assert!(!l.dirty(1));
    }

    #[test]
    fn bounds_ask_for_a_commit() {
        let mut l = WriteLog::new(4, 6);
        l.record(1, 0, b"abc", 1);
        assert!(!l.over(1));
        l.record(1, 3, b"d", 1);
        assert!(
            l.over(1) && !l.over(3),
            "only the full file is at its bound"
        );
        l.record(2, 0, b"xy", 1);
        assert!(l.over(3), "the total bound concerns every file");
        l.discard(1);
        assert_eq!(l.total(), 2);
        assert_eq!(l.dirty_files(), vec![2]);
    }
}
