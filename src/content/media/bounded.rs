//! The reader every probe reads through: buffered (a box or element header after a seek is
//! usually inside the block read for the previous one) and bounded (a crafted file of a
//! million empty boxes stops the probe after [`MAX_READS`] reads or [`MAX_BYTES`] bytes,
//! instead of holding a thread for seconds).

use std::io::{self, Read, Seek, SeekFrom};

/// Most reads from the file one probe may make.
pub const MAX_READS: u64 = 20_000;
/// Most bytes one probe may read from the file.
pub const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Bytes read around a small read.
const BLOCK: usize = 8 * 1024;

/// The marker inside the `io::Error` of a probe that ran out of its budget.
#[derive(Debug, thiserror::Error)]
#[error("the probe's read budget is spent ({reads} reads, {bytes} bytes)")]
pub struct BudgetSpent {
    pub reads: u64,
    pub bytes: u64,
}

/// A buffered, bounded view of `R`.
pub struct Bounded<R> {
    inner: R,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_at: u64,
    pos: u64,
    reads: u64,
    bytes: u64,
}

impl<R: Read + Seek> Bounded<R> {
    pub fn new(inner: R) -> Self {
        Bounded {
            inner,
            buf: Vec::new(),
            buf_at: 0,
            pos: 0,
            reads: 0,
            bytes: 0,
        }
    }

    /// Reads made from the file, and bytes read.
    #[cfg(test)]
    pub fn spent(&self) -> (u64, u64) {
        (self.reads, self.bytes)
    }

    fn charge(&mut self, n: usize) -> io::Result<()> {
        self.reads += 1;
        self.bytes += n as u64;
        if self.reads > MAX_READS || self.bytes > MAX_BYTES {
            return Err(io::Error::other(BudgetSpent {
                reads: self.reads,
                bytes: self.bytes,
            }));
        }
        Ok(())
    }

    /// Reads from the file at `self.pos` into `out` (the budget charged first).
    fn read_through(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.charge(out.len())?;
        self.inner.seek(SeekFrom::Start(self.pos))?;
        self.inner.read(out)
    }
}

impl<R: Read + Seek> Read for Bounded<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let end = self.buf_at + self.buf.len() as u64;
        if self.pos < self.buf_at || self.pos >= end {
            if out.len() >= BLOCK {
                let n = self.read_through(out)?;
                self.pos += n as u64;
                return Ok(n);
            }
            let mut block = std::mem::take(&mut self.buf);
            block.resize(BLOCK, 0);
            let n = match self.read_through(&mut block) {
                Ok(n) => n,
                Err(e) => {
                    block.clear();
                    self.buf = block;
                    return Err(e);
                }
            };
            block.truncate(n);
            self.buf = block;
            self.buf_at = self.pos;
            if n == 0 {
                return Ok(0);
            }
        }
        let from = (self.pos - self.buf_at) as usize;
        let n = out.len().min(self.buf.len() - from);
        out[..n].copy_from_slice(&self.buf[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Bounded<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.inner.seek(SeekFrom::End(d))?,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?,
        };
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_what_the_file_holds_from_any_offset() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = Bounded::new(Cursor::new(data.clone()));
        for at in [0u64, 7, 8191, 8192, 20_000, 49_990] {
            r.seek(SeekFrom::Start(at)).expect("seek");
            let mut got = [0u8; 16];
            let n = r.read(&mut got).expect("read");
            assert!(n > 0);
            assert_eq!(&got[..n], &data[at as usize..at as usize + n]);
        }
        let mut big = vec![0u8; 10_000];
        r.seek(SeekFrom::Start(100)).expect("seek");
        r.read_exact(&mut big).expect("read");
        assert_eq!(big, data[100..10_100]);
        assert_eq!(r.seek(SeekFrom::End(0)).expect("end"), 50_000);
        assert_eq!(r.read(&mut [0u8; 4]).expect("eof"), 0);
    }

    #[test]
    fn small_reads_nearby_share_one_block() {
        let mut r = Bounded::new(Cursor::new(vec![1u8; 100_000]));
        for at in (0..8000).step_by(16) {
            r.seek(SeekFrom::Start(at)).expect("seek");
            r.read_exact(&mut [0u8; 8]).expect("read");
        }
        assert_eq!(r.spent().0, 1);
    }

    #[test]
    fn the_budget_ends_a_runaway_walk() {
        let mut r = Bounded::new(Cursor::new(vec![0u8; 64 * 1024]));
        let err = (0..)
            .map(|i: u64| {
                r.seek(SeekFrom::Start((i % 2) * 2 * BLOCK as u64))?;
                r.read_exact(&mut [0u8; 8])
            })
            .find_map(Result::err)
            .expect("stops");
        assert!(
            err.get_ref().is_some_and(|e| e.is::<BudgetSpent>()),
            "{err}"
        );
        assert!(r.spent().0 <= MAX_READS + 1);
    }
}
