//! A bounded, append-only on-disk journal of opaque entries: what the store could not write
//! while the database was unavailable waits here, in order, until it is replayed.
//!
//! ```text
//! let mut j = Journal::open(dir, 256 << 20)?;     // scans the file, drops a torn tail
//! j.append(&[entry_a, entry_b])?;                 // one write + one fsync per batch
//! while let Some(entry) = j.peek()? {             // the oldest entry still pending
//!     write_to_the_database(&entry)?;             // committed ...
//!     j.pop()?;                                   // ... then forgotten (position fsynced)
//! }
//! ```
//!
//! Files, in `dir`:
//! - `journal.log`: frames `[len: u32 LE][check: 8 bytes][payload: len bytes]`, where `check`
//!   is the first 8 bytes of SHA-256 over the length and the payload. A frame that is cut short
//!   or does not match its check (a `kill -9` or a power cut in the middle of an append) ends
//!   the journal: it and everything after it is dropped at [`Journal::open`] (logged at WARN
//!   with the bytes dropped), never misread as an entry. Appends are fsynced before `append`
//!   returns, so an entry `append` acknowledged is never in such a tail.
//! - `journal.pos`: the offset of the first entry not yet replayed, with its own check. It is
//!   advanced (and fsynced) only after the entry's write committed, so a crash between the
//!   commit and the advance replays that entry once more: consumers make replays idempotent.
//!   A missing or damaged `journal.pos` means offset 0: everything is replayed again.
//!
//! Once every entry is replayed both files are truncated to nothing. While entries are
//! pending, replayed ones stay at the head of the file; an append that would grow the file
//! past the bound first compacts it (copies the pending entries to a new file and renames it
//! over the old one).
//!
//! **The bound.** The file never exceeds `bound_bytes`. An append that does not fit even after
//! compaction is refused whole ([`JournalError::Full`]); what is already in the journal is
//! kept. Keeping the oldest is deliberate: the journal is replayed in order and later records
//! build on earlier ones (a CDR on its call, a contact's next attempt on its previous one),
//! and dropping the head would mean rewriting the file at the moment the disk budget is
//! exhausted. Callers count the refused entries as dropped and log them at ERROR.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tracing::warn;

/// Bytes of a frame's header: length (4) and check (8).
const FRAME_HEADER: u64 = 12;

/// The default bound of a journal, in bytes (256 MiB: about three and a half hours of records
/// at 10 calls/s, measured at 20 KB/s; see the README).
pub const DEFAULT_BOUND_BYTES: u64 = 256 << 20;

const LOG_FILE: &str = "journal.log";
const POS_FILE: &str = "journal.pos";

/// Why a journal operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The entries do not fit under the journal's bound; nothing of them was written.
    #[error(
        "journal full: {pending_bytes} bytes pending, {needed} more needed, bound {bound_bytes}"
    )]
    Full {
        pending_bytes: u64,
        needed: u64,
        bound_bytes: u64,
    },
    /// The file system failed (the journal's directory, a write, an fsync).
    #[error("journal I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The journal in one directory. Not shared between processes (one switchyard per directory).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    log: File,
    /// Offset of the first pending entry.
    head: u64,
    /// Length of the valid log (the next append goes here).
    tail: u64,
    /// Entries between `head` and `tail`.
    entries: u64,
    bound: u64,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, checking every frame: a torn or damaged tail is
    /// cut off. `bound_bytes` is the largest the log file may grow.
    pub fn open(dir: &Path, bound_bytes: u64) -> Result<Journal, JournalError> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let path = dir.join(LOG_FILE);
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_at(&path))?;
        let len = log.metadata().map_err(io_at(&path))?.len();
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes).map_err(io_at(&path))?;
        // Every complete, matching frame from the start; the first bad one ends the journal.
        let mut offsets = Vec::new();
        let mut at = 0usize;
        while let Some(size) = frame_at(&bytes, at) {
            offsets.push(at as u64);
            at += size;
        }
        let tail = at as u64;
        if tail < len {
            warn!(
                path = %path.display(),
                dropped_bytes = len - tail,
                kept_entries = offsets.len(),
                "journal ends in a torn or damaged frame (a crash during an append); \
                 dropping it"
            );
            log.set_len(tail).map_err(io_at(&path))?;
            log.sync_all().map_err(io_at(&path))?;
        }
        let stored_head = read_pos(&dir.join(POS_FILE));
        // The head must be a frame boundary inside the valid log; anything else replays all.
        let head = if stored_head == tail || offsets.binary_search(&stored_head).is_ok() {
            stored_head
        } else {
            0
        };
        let entries = offsets.iter().filter(|&&o| o >= head).count() as u64;
        Ok(Journal {
            dir: dir.to_owned(),
            log,
            head,
            tail,
            entries,
            bound: bound_bytes.max(FRAME_HEADER + 1),
        })
    }

    /// Entries not yet replayed.
    pub fn pending_entries(&self) -> u64 {
        self.entries
    }

    /// Bytes of the entries not yet replayed (frames included).
    pub fn pending_bytes(&self) -> u64 {
        self.tail - self.head
    }

    pub fn bound_bytes(&self) -> u64 {
        self.bound
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `payloads` in order and fsyncs them: once this returns Ok they survive a crash.
    /// All or nothing at the bound ([`JournalError::Full`]).
    pub fn append(&mut self, payloads: &[Vec<u8>]) -> Result<(), JournalError> {
        let needed: u64 = payloads.iter().map(|p| FRAME_HEADER + p.len() as u64).sum();
        if needed == 0 {
            return Ok(());
        }
        if self.tail + needed > self.bound && self.head > 0 {
            self.compact()?;
        }
        if self.tail + needed > self.bound || payloads.iter().any(|p| p.len() > u32::MAX as usize) {
            return Err(JournalError::Full {
                pending_bytes: self.pending_bytes(),
                needed,
                bound_bytes: self.bound,
            });
        }
        let mut buf = Vec::with_capacity(needed as usize);
        for p in payloads {
            let len = (p.len() as u32).to_le_bytes();
            buf.extend_from_slice(&len);
            buf.extend_from_slice(&check(&len, p));
            buf.extend_from_slice(p);
        }
        let path = self.dir.join(LOG_FILE);
        let written = self
            .log
            .seek(SeekFrom::Start(self.tail))
            .and_then(|_| self.log.write_all(&buf))
            .and_then(|()| self.log.sync_data());
        if let Err(e) = written {
            // Whatever part reached the file is cut off again, so the next append starts on a
            // frame boundary (and a crash now leaves a torn tail that `open` drops).
            let _ = self.log.set_len(self.tail);
            return Err(JournalError::Io { path, source: e });
        }
        self.tail += needed;
        self.entries += payloads.len() as u64;
        Ok(())
    }

    /// The oldest pending entry, without consuming it.
    pub fn peek(&mut self) -> Result<Option<Vec<u8>>, JournalError> {
        if self.head >= self.tail {
            return Ok(None);
        }
        let path = self.dir.join(LOG_FILE);
        let mut header = [0u8; FRAME_HEADER as usize];
        self.log
            .seek(SeekFrom::Start(self.head))
            .and_then(|_| self.log.read_exact(&mut header))
            .map_err(io_at(&path))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let mut payload = vec![0u8; len];
        self.log.read_exact(&mut payload).map_err(io_at(&path))?;
        Ok(Some(payload))
    }

    /// Forgets the oldest pending entry (its write committed). Durable before it returns.
    pub fn pop(&mut self) -> Result<(), JournalError> {
        if self.head >= self.tail {
            return Ok(());
        }
        let path = self.dir.join(LOG_FILE);
        let mut len = [0u8; 4];
        self.log
            .seek(SeekFrom::Start(self.head))
            .and_then(|_| self.log.read_exact(&mut len))
            .map_err(io_at(&path))?;
        self.head += FRAME_HEADER + u64::from(u32::from_le_bytes(len));
        self.entries = self.entries.saturating_sub(1);
        if self.head >= self.tail {
            // Drained: both files start over empty (the position first, so that a crash in
            // between finds position 0 and an empty or fully replayed log, never a stale
            // position beyond a shortened log).
            write_pos(&self.dir.join(POS_FILE), 0)?;
            self.log.set_len(0).map_err(io_at(&path))?;
            self.log.sync_all().map_err(io_at(&path))?;
            self.head = 0;
            self.tail = 0;
            self.entries = 0;
        } else {
            write_pos(&self.dir.join(POS_FILE), self.head)?;
        }
        Ok(())
    }

    /// Rewrites the log with only the pending entries (to make room under the bound).
    fn compact(&mut self) -> Result<(), JournalError> {
        let path = self.dir.join(LOG_FILE);
        let tmp = self.dir.join("journal.log.compact");
        let mut pending = vec![0u8; (self.tail - self.head) as usize];
        self.log
            .seek(SeekFrom::Start(self.head))
            .and_then(|_| self.log.read_exact(&mut pending))
            .map_err(io_at(&path))?;
        let mut out = File::create(&tmp).map_err(io_at(&tmp))?;
        out.write_all(&pending)
            .and_then(|()| out.sync_all())
            .map_err(io_at(&tmp))?;
        // Position 0 goes to disk before the rename: a crash in between leaves the old log with
        // position 0 (everything replayed again, which consumers make idempotent), never the
        // new log with an old position that could skip pending entries.
        write_pos(&self.dir.join(POS_FILE), 0)?;
        fs::rename(&tmp, &path).map_err(io_at(&path))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_at(&path))?;
        self.tail -= self.head;
        self.head = 0;
        Ok(())
    }
}

/// The size of the valid frame starting at `at`, if there is one.
fn frame_at(bytes: &[u8], at: usize) -> Option<usize> {
    let header = bytes.get(at..at + FRAME_HEADER as usize)?;
    let len_bytes = [header[0], header[1], header[2], header[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let start = at + FRAME_HEADER as usize;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (check(&len_bytes, payload) == header[4..12]).then_some(FRAME_HEADER as usize + len)
}

fn check(len: &[u8; 4], payload: &[u8]) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(len)
        .chain_update(payload)
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// The stored replay position, or 0 when missing or damaged (replaying again is safe).
fn read_pos(path: &Path) -> u64 {
    let Ok(bytes) = fs::read(path) else {
        return 0;
    };
    let Some((pos, sum)) = bytes.split_first_chunk::<8>() else {
        return 0;
    };
    if sum.len() == 8 && check(&[0; 4], pos)[..] == *sum {
        u64::from_le_bytes(*pos)
    } else {
        0
    }
}

fn write_pos(path: &Path, pos: u64) -> Result<(), JournalError> {
    let bytes = pos.to_le_bytes();
    let mut buf = bytes.to_vec();
    buf.extend_from_slice(&check(&[0; 4], &bytes));
    // 16 bytes in place: one sector, written whole or not at all on the disks we run on; a
    // damaged one reads as 0 (replay everything, which is idempotent).
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_at(path))?;
    f.write_all(&buf)
        .and_then(|()| f.sync_data())
        .map_err(io_at(path))
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory, removed when the guard is dropped.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for TempDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<Path> for TempDir {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    fn dir(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "switchyard-journal-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let _ = fs::remove_dir_all(&d);
        TempDir(d)
    }

    fn drain(j: &mut Journal) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(e) = j.peek().unwrap() {
            out.push(e);
            j.pop().unwrap();
        }
        out
    }

    #[test]
    fn entries_come_back_in_order_after_a_reopen() {
        let d = dir("order");
        let mut j = Journal::open(&d, 1 << 20).unwrap();
        j.append(&[b"one".to_vec(), b"two".to_vec()]).unwrap();
        j.append(&[b"three".to_vec()]).unwrap();
        drop(j);
        let mut j = Journal::open(&d, 1 << 20).unwrap();
        assert_eq!(j.pending_entries(), 3);
        assert_eq!(
            drain(&mut j),
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        assert_eq!(j.pending_bytes(), 0);
        assert_eq!(fs::metadata(d.join(LOG_FILE)).unwrap().len(), 0);
    }

    #[test]
    fn a_replay_interrupted_resumes_after_the_last_popped_entry() {
        let d = dir("resume");
        let mut j = Journal::open(&d, 1 << 20).unwrap();
        j.append(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
            .unwrap();
        assert_eq!(j.peek().unwrap(), Some(b"a".to_vec()));
        j.pop().unwrap();
        // "b" was peeked and written, but the process died before its pop.
        assert_eq!(j.peek().unwrap(), Some(b"b".to_vec()));
        drop(j);
        let mut j = Journal::open(&d, 1 << 20).unwrap();
        assert_eq!(j.pending_entries(), 2);
        assert_eq!(drain(&mut j), vec![b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn a_torn_tail_is_dropped_not_misread() {
        let d = dir("torn");
        let mut j = Journal::open(&d, 1 << 20).unwrap();
        j.append(&[b"kept".to_vec()]).unwrap();
        j.append(&[b"torn entry".to_vec()]).unwrap();
        drop(j);
        let path = d.join(LOG_FILE);
        let len = fs::metadata(&path).unwrap().len();
        // Every cut inside the second frame leaves exactly the first entry.
        for cut in (len - 10 - FRAME_HEADER + 1)..len {
            let bytes = fs::read(&path).unwrap();
            let probe = dir("torn-probe");
            fs::create_dir_all(&probe).unwrap();
            fs::write(probe.join(LOG_FILE), &bytes[..cut as usize]).unwrap();
            let mut j = Journal::open(&probe, 1 << 20).unwrap();
            assert_eq!(drain(&mut j), vec![b"kept".to_vec()], "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_ends_the_journal_at_that_frame() {
        let d = dir("flip");
        let mut j = Journal::open(&d, 1 << 20).unwrap();
        j.append(&[b"first".to_vec(), b"second".to_vec(), b"third".to_vec()])
            .unwrap();
        drop(j);
        let path = d.join(LOG_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let second_payload = (FRAME_HEADER as usize + 5) + FRAME_HEADER as usize;
        bytes[second_payload] ^= 0x20;
        fs::write(&path, &bytes).unwrap();
        let mut j = Journal::open(&d, 1 << 20).unwrap();
        assert_eq!(drain(&mut j), vec![b"first".to_vec()]);
    }

    #[test]
    fn at_the_bound_new_entries_are_refused_and_old_ones_kept() {
        let d = dir("bound");
        let mut j = Journal::open(&d, 100).unwrap();
        j.append(&[vec![1u8; 30]]).unwrap();
        j.append(&[vec![2u8; 30]]).unwrap();
        let err = j.append(&[vec![3u8; 30]]).unwrap_err();
        assert!(
            matches!(
                err,
                JournalError::Full {
                    bound_bytes: 100,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(j.pending_entries(), 2);
        assert!(fs::metadata(d.join(LOG_FILE)).unwrap().len() <= 100);
        assert_eq!(drain(&mut j), vec![vec![1u8; 30], vec![2u8; 30]]);
    }

    #[test]
    fn replayed_entries_make_room_by_compaction() {
        let d = dir("compact");
        let mut j = Journal::open(&d, 100).unwrap();
        j.append(&[vec![1u8; 30]]).unwrap();
        j.append(&[vec![2u8; 30]]).unwrap();
        assert_eq!(j.peek().unwrap(), Some(vec![1u8; 30]));
        j.pop().unwrap();
        // Three frames of 42 bytes do not fit in 100; one is replayed, so after compaction
        // the third does.
        j.append(&[vec![3u8; 30]]).unwrap();
        assert!(fs::metadata(d.join(LOG_FILE)).unwrap().len() <= 100);
        drop(j);
        let mut j = Journal::open(&d, 100).unwrap();
        assert_eq!(drain(&mut j), vec![vec![2u8; 30], vec![3u8; 30]]);
    }

    #[test]
    fn a_damaged_position_replays_everything_again() {
        let d = dir("pos");
        let mut j = Journal::open(&d, 1 << 20).unwrap();
        j.append(&[b"x".to_vec(), b"y".to_vec()]).unwrap();
        j.pop().unwrap();
        drop(j);
        fs::write(d.join(POS_FILE), b"garbage").unwrap();
        let mut j = Journal::open(&d, 1 << 20).unwrap();
        assert_eq!(drain(&mut j), vec![b"x".to_vec(), b"y".to_vec()]);
    }
}
