//! The WARC files, owned by one writer thread: records appended in the order
//! they come, each file named `….open` while it is written and renamed once
//! closed (so a reader never takes a half-written file for a finished one),
//! rotated past `--warc-max-size`, each with its CDXJ index beside it
//! (`--cdxj`). After the first write error nothing more is written: the file
//! ends in whole records and at most one torn one, which `--resume` cuts off.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::read::whole_records;
use super::record::{Member, Packing, warcinfo};
use crate::output::WarcPointer;

/// How the files are named: `STEM.warc.gz`, or `STEM-00000.warc.gz`, ...
pub(crate) struct Names {
    /// The folder, as `--warc` named it.
    pub(crate) dir: PathBuf,
    pub(crate) stem: String,
    pub(crate) packing: Packing,
    /// Numbered: rotation, or a resumed run's next file.
    pub(crate) numbered: bool,
}

impl Names {
    fn ext(&self) -> &'static str {
        match self.packing {
            Packing::Gzip => ".warc.gz",
            Packing::Plain => ".warc",
        }
    }

    /// The final file name of file `n`.
    pub(crate) fn name(&self, n: u32) -> String {
        match self.numbered {
            true => format!("{}-{n:05}{}", self.stem, self.ext()),
            false => format!("{}{}", self.stem, self.ext()),
        }
    }

    fn cdxj(&self, n: u32) -> PathBuf {
        let name = self.name(n);
        let stem = name.strip_suffix(self.ext()).unwrap_or(&name);
        self.dir.join(format!("{stem}.cdxj"))
    }

    /// The number of a file name of this archive (`STEM.warc.gz` is 0), and
    /// whether it is still open.
    fn number_of(&self, name: &str) -> Option<(u32, bool)> {
        let (name, open) = match name.strip_suffix(".open") {
            Some(n) => (n, true),
            None => (name, false),
        };
        let rest = name
            .strip_suffix(self.ext())?
            .strip_prefix(self.stem.as_str())?;
        if rest.is_empty() {
            return Some((0, open));
        }
        let digits = rest.strip_prefix('-')?;
        (digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| (digits.parse().ok(), open))
            .and_then(|(n, open)| Some((n?, open)))
    }
}

/// One input's records, and which of them its pointer names.
pub(crate) type Input = (Vec<Member>, Option<usize>);

/// The file being written.
struct Current {
    n: u32,
    file: File,
    len: u64,
    /// Its index lines so far (`--cdxj`).
    lines: Vec<String>,
}

/// The writer thread's state.
pub(crate) struct Files {
    names: Names,
    info: Vec<(String, String)>,
    max_size: Option<u64>,
    cdxj: bool,
    next: u32,
    current: Option<Current>,
    /// The first write error: every later record fails with it.
    broken: Option<String>,
}

impl Files {
    /// Ready to write file `first`, created now so a bad path fails before
    /// the run.
    pub(crate) fn open(
        names: Names,
        info: Vec<(String, String)>,
        max_size: Option<u64>,
        cdxj: bool,
        first: u32,
    ) -> anyhow::Result<Files> {
        let mut files = Files {
            names,
            info,
            max_size,
            cdxj,
            next: first,
            current: None,
            broken: None,
        };
        files.start().with_context(|| {
            format!(
                "cannot create --warc '{}'",
                files.open_path(files.next).display()
            )
        })?;
        Ok(files)
    }

    fn open_path(&self, n: u32) -> PathBuf {
        self.names.dir.join(format!("{}.open", self.names.name(n)))
    }

    /// Start the next file with its warcinfo record.
    fn start(&mut self) -> std::io::Result<()> {
        let n = self.next;
        self.next += 1;
        let mut file = File::create(self.open_path(n))?;
        let info = warcinfo(&self.names.name(n), &self.info, self.names.packing);
        file.write_all(&info)?;
        self.current = Some(Current {
            n,
            file,
            len: info.len() as u64,
            lines: Vec::new(),
        });
        Ok(())
    }

    /// Append inputs' records (each input's, and the one of them its
    /// pointer names); the pointers.
    pub(crate) fn append(
        &mut self,
        inputs: Vec<Input>,
    ) -> Result<Vec<Option<WarcPointer>>, String> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        match self.write(inputs) {
            Ok(pointer) => Ok(pointer),
            Err(e) => {
                let path = self.current.as_ref().map(|c| self.open_path(c.n));
                let why = format!(
                    "--warc: cannot write '{}': {e}",
                    path.unwrap_or_default().display()
                );
                self.broken = Some(why.clone());
                Err(why)
            }
        }
    }

    fn write(&mut self, inputs: Vec<Input>) -> std::io::Result<Vec<Option<WarcPointer>>> {
        let mut pointers = Vec::with_capacity(inputs.len());
        let mut rest = &inputs[..];
        while !rest.is_empty() {
            let taken = self.write_some(rest, &mut pointers)?;
            rest = &rest[taken..];
        }
        Ok(pointers)
    }

    /// Write inputs from the start of `inputs` into the current file, in one
    /// write (fewer system calls), up to the one that takes it past
    /// `--warc-max-size` (then the file is closed); how many were written.
    fn write_some(
        &mut self,
        inputs: &[Input],
        pointers: &mut Vec<Option<WarcPointer>>,
    ) -> std::io::Result<usize> {
        if self.current.is_none() {
            self.start()?;
        }
        let current = self.current.as_mut().expect("a file is open");
        let name = self.names.name(current.n);
        let file = self.names.dir.join(&name).display().to_string();
        // A plain record's length, as warcio and cdxj-indexer count it, leaves
        // out the line ends after it.
        let trailer = match self.names.packing {
            Packing::Plain => 4,
            Packing::Gzip => 0,
        };
        let mut at = current.len;
        let mut taken = 0;
        let mut full = false;
        for (members, answer) in inputs {
            let mut pointer = None;
            for (i, member) in members.iter().enumerate() {
                let length = member.bytes.len() as u64 - trailer;
                if let Some(fields) = &member.index
                    && self.cdxj
                {
                    current.lines.push(fields.line(at, length, &name));
                }
                if *answer == Some(i) {
                    let file = file.clone();
                    pointer = Some(WarcPointer {
                        file,
                        offset: at,
                        length,
                    });
                }
                at += length + trailer;
            }
            pointers.push(pointer);
            taken += 1;
            full = self.max_size.is_some_and(|max| at >= max);
            if full {
                break;
            }
        }
        let slices: Vec<&[u8]> = inputs[..taken]
            .iter()
            .flat_map(|(m, _)| m)
            .map(|m| &m.bytes[..])
            .collect();
        write_all_vectored(&mut current.file, &slices)?;
        current.len = at;
        if full {
            self.close()?;
        }
        Ok(taken)
    }

    /// Close the file being written: its index, then its final name.
    pub(crate) fn close(&mut self) -> std::io::Result<()> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        current.file.sync_all()?;
        if self.cdxj {
            write_index(&self.names.cdxj(current.n), current.lines)?;
        }
        let done = self.names.dir.join(self.names.name(current.n));
        std::fs::rename(self.open_path(current.n), done)
    }

    /// At the end of the run: close the file, unless writing failed (then it
    /// stays `.open`, for `--resume` to cut back).
    pub(crate) fn finish(mut self) -> Result<(), String> {
        if let Some(broken) = self.broken.take() {
            return Err(broken);
        }
        self.close()
            .map_err(|e| format!("--warc: cannot close the last file: {e}"))
    }
}

/// Every byte of `slices`, in as few system calls as the kernel allows
/// (`Write::write_all_vectored` is not stable yet).
fn write_all_vectored(file: &mut File, slices: &[&[u8]]) -> std::io::Result<()> {
    let mut rest: Vec<&[u8]> = slices.iter().copied().filter(|s| !s.is_empty()).collect();
    let mut start = 0;
    while start < rest.len() {
        let io: Vec<std::io::IoSlice> = rest[start..]
            .iter()
            .take(1024)
            .map(|s| std::io::IoSlice::new(s))
            .collect();
        let mut n = file.write_vectored(&io)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while start < rest.len() && n >= rest[start].len() {
            n -= rest[start].len();
            start += 1;
        }
        if n > 0 {
            rest[start] = &rest[start][n..];
        }
    }
    Ok(())
}

fn write_index(path: &Path, mut lines: Vec<String>) -> std::io::Result<()> {
    lines.sort_unstable();
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// `--resume`: close what an earlier run left open (cut back to its last
/// whole record, indexed), and say which number the next file takes; `None`
/// when the earlier run left no file of this archive.
pub(crate) fn recover(names: &Names, cdxj: bool) -> anyhow::Result<Option<u32>> {
    let dir = match names.dir.as_os_str().is_empty() {
        true => Path::new("."),
        false => names.dir.as_path(),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut highest = None;
    let mut open = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((n, is_open)) = names.number_of(&name) {
            highest = highest.max(Some(n));
            if is_open {
                open.push(name);
            }
        }
    }
    for name in open {
        let path = names.dir.join(&name);
        let (records, end) = whole_records(&path, names.packing)
            .with_context(|| format!("--resume: cannot read '{}'", path.display()))?;
        let len = std::fs::metadata(&path)?.len();
        if end < len {
            tracing::warn!(
                "--resume: cut '{}' back to its last whole record ({} bytes dropped)",
                path.display(),
                len - end
            );
            let file = std::fs::OpenOptions::new().write(true).open(&path)?;
            file.set_len(end)?;
            file.sync_all()?;
        }
        let done = name.strip_suffix(".open").expect("an open file");
        if cdxj {
            let lines = records
                .iter()
                .filter_map(|r| Some(r.index()?.line(r.offset, r.length, done)))
                .collect();
            let stem = done.strip_suffix(names.ext()).unwrap_or(done);
            write_index(&names.dir.join(format!("{stem}.cdxj")), lines)?;
        }
        std::fs::rename(&path, names.dir.join(done))
            .with_context(|| format!("--resume: cannot close '{}'", path.display()))?;
    }
    Ok(highest.map(|n| n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_for_rotation_and_read_back() {
        let names = Names {
            dir: PathBuf::from("out"),
            stem: "crawl".into(),
            packing: Packing::Gzip,
            numbered: true,
        };
        assert_eq!(names.name(7), "crawl-00007.warc.gz");
        assert_eq!(names.cdxj(7), PathBuf::from("out/crawl-00007.cdxj"));
        assert_eq!(names.number_of("crawl-00007.warc.gz"), Some((7, false)));
        assert_eq!(
            names.number_of("crawl-00012.warc.gz.open"),
            Some((12, true))
        );
        assert_eq!(names.number_of("crawl.warc.gz"), Some((0, false)));
        for other in [
            "crawl-7.warc.gz",
            "crawlx.warc.gz",
            "crawl-00001.warc",
            "other.warc.gz",
        ] {
            assert_eq!(names.number_of(other), None, "{other}");
        }
    }
}
