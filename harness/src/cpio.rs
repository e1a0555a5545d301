//! Initramfs trees and their `newc` cpio encoding (the format Linux unpacks as initramfs).
//!
//! A [`Tree`] maps absolute guest paths to [`Node`]s. Parent directories are added implicitly
//! when the archive is written, and paths are emitted in sorted order, so a directory always
//! precedes its contents (Linux's unpacker does not create missing parents).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Read from this host file when the archive is written.
    Host(PathBuf),
    /// These bytes.
    Bytes(Vec<u8>),
}

/// One archive entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory (mode 0755).
    Dir,
    /// A regular file with permission bits `mode` (e.g. 0o755).
    File {
        /// The file's bytes.
        content: Content,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link to `target`.
    Symlink(String),
    /// A character device node.
    CharDev {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// An initramfs under construction: absolute path (`/bin/sh`) to node.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

/// Normalises an absolute archive path: no leading `/`, no empty/`.` components, no `..`.
pub fn normalise(path: &str) -> io::Result<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("archive path {path:?} contains '..'"),
                ))
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("archive path {path:?} names the root"),
        ));
    }
    Ok(parts.join("/"))
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts (or replaces) `node` at `path`.
    pub fn insert(&mut self, path: &str, node: Node) -> io::Result<()> {
        let key = normalise(path)?;
        self.nodes.insert(key, node);
        Ok(())
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        self.insert(path, Node::Dir)
    }

    /// Adds a host file, keeping its permission bits.
    pub fn host_file(&mut self, path: &str, host: &Path) -> io::Result<()> {
        let meta = std::fs::metadata(host)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", host.display())))?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", host.display()),
            ));
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        self.insert(
            path,
            Node::File {
                content: Content::Host(host.to_path_buf()),
                mode,
            },
        )
    }

    /// Adds a file with the given bytes and mode.
    pub fn bytes(&mut self, path: &str, bytes: impl Into<Vec<u8>>, mode: u32) -> io::Result<()> {
        self.insert(
            path,
            Node::File {
                content: Content::Bytes(bytes.into()),
                mode,
            },
        )
    }

    /// Adds a symlink.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.insert(path, Node::Symlink(target.to_string()))
    }

    /// All entries including implicit parent directories, in archive order.
    fn entries(&self) -> BTreeMap<String, Node> {
        let mut all = self.nodes.clone();
        for key in self.nodes.keys() {
            let mut parent = key.as_str();
            while let Some(idx) = parent.rfind('/') {
                parent = &parent[..idx];
                all.entry(parent.to_string()).or_insert(Node::Dir);
            }
        }
        all
    }

    /// Writes the tree as a `newc` cpio archive (with trailer) to `out`.
    pub fn write_newc(&self, out: &mut impl Write) -> io::Result<u64> {
        let mut w = NewcWriter::new(out);
        for (ino, (name, node)) in self.entries().iter().enumerate() {
            let ino = u32::try_from(ino + 1).map_err(|_| io::Error::other("too many entries"))?;
            match node {
                Node::Dir => w.entry(name, ino, 0o040_755, 0, 0, &mut io::empty(), 0)?,
                Node::Symlink(target) => {
                    let bytes = target.as_bytes();
                    w.entry(
                        name,
                        ino,
                        0o120_777,
                        0,
                        0,
                        &mut &bytes[..],
                        bytes.len() as u64,
                    )?
                }
                Node::CharDev { major, minor } => {
                    w.entry(name, ino, 0o020_600, *major, *minor, &mut io::empty(), 0)?
                }
                Node::File { content, mode } => {
                    let mode = 0o100_000 | (mode & 0o7777);
                    match content {
                        Content::Bytes(b) => {
                            w.entry(name, ino, mode, 0, 0, &mut &b[..], b.len() as u64)?
                        }
                        Content::Host(p) => {
                            let f = std::fs::File::open(p).map_err(|e| {
                                io::Error::new(e.kind(), format!("{}: {e}", p.display()))
                            })?;
                            let len = f.metadata()?.len();
                            w.entry(name, ino, mode, 0, 0, &mut io::BufReader::new(f), len)?
                        }
                    }
                }
            }
        }
        w.trailer()?;
        Ok(w.written)
    }
}

/// Streams `newc` records, tracking the offset for 4-byte padding.
struct NewcWriter<'a, W: Write> {
    out: &'a mut W,
    written: u64,
}

impl<'a, W: Write> NewcWriter<'a, W> {
    fn new(out: &'a mut W) -> Self {
        Self { out, written: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..rem])
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        rdev_major: u32,
        rdev_minor: u32,
        data: &mut impl Read,
        len: u64,
    ) -> io::Result<()> {
        let size = u32::try_from(len).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: {len} bytes is too large for newc"),
            )
        })?;
        let name_size = name.len() + 1;
        let nlink = if mode & 0o170_000 == 0o040_000 { 2 } else { 1 };
        let header = format!(
            "070701{ino:08X}{mode:08X}{:08X}{:08X}{nlink:08X}{:08X}{size:08X}{:08X}{:08X}{rdev_major:08X}{rdev_minor:08X}{name_size:08X}{:08X}",
            0, 0, 0, 0, 0, 0
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        let copied = io::copy(&mut data.take(len), &mut WriteCount(self))?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: file shrank while archiving ({copied} of {len} bytes)"),
            ));
        }
        self.pad()
    }

    fn trailer(&mut self) -> io::Result<()> {
        self.entry("TRAILER!!!", 0, 0, 0, 0, &mut io::empty(), 0)
    }
}

/// Adapter so `io::copy` goes through [`NewcWriter::put`] (keeps the offset right).
struct WriteCount<'w, 'a, W: Write>(&'w mut NewcWriter<'a, W>);

impl<W: Write> Write for WriteCount<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.put(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One decoded record: (name, mode, (rdev major, minor), data).
    type Record = (String, u32, (u32, u32), Vec<u8>);

    /// Minimal newc reader for the tests.
    fn parse(mut buf: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        let total = buf.len();
        loop {
            let off = total - buf.len();
            assert_eq!(off % 4, 0, "record not 4-aligned");
            assert_eq!(&buf[..6], b"070701");
            let field = |i: usize| {
                u32::from_str_radix(
                    std::str::from_utf8(&buf[6 + i * 8..14 + i * 8]).unwrap(),
                    16,
                )
                .unwrap()
            };
            let mode = field(1);
            let size = field(6) as usize;
            let rdev = (field(9), field(10));
            let namesize = field(11) as usize;
            let name = std::str::from_utf8(&buf[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            assert_eq!(buf[110 + namesize - 1], 0);
            let data_start = (110 + namesize).div_ceil(4) * 4;
            let data = buf[data_start..data_start + size].to_vec();
            let next = (data_start + size).div_ceil(4) * 4;
            buf = &buf[next..];
            if name == "TRAILER!!!" {
                assert!(buf.is_empty());
                return out;
            }
            out.push((name, mode, rdev, data));
        }
    }

    #[test]
    fn parents_first_and_padding() {
        let mut t = Tree::new();
        t.bytes("/usr/bin/x", b"hello".to_vec(), 0o755).unwrap();
        t.symlink("/bin/sh", "busybox").unwrap();
        t.insert("/dev/console", Node::CharDev { major: 5, minor: 1 })
            .unwrap();
        t.bytes("/a-b", b"1234".to_vec(), 0o644).unwrap();
        let mut buf = Vec::new();
        let n = t.write_newc(&mut buf).unwrap();
        assert_eq!(n as usize, buf.len());
        let entries = parse(&buf);
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "a-b",
                "bin",
                "bin/sh",
                "dev",
                "dev/console",
                "usr",
                "usr/bin",
                "usr/bin/x"
            ]
        );
        let x = &entries[7];
        assert_eq!(x.1, 0o100_755);
        assert_eq!(x.3, b"hello");
        assert_eq!(entries[2].1, 0o120_777);
        assert_eq!(entries[2].3, b"busybox");
        assert_eq!(entries[4].1, 0o020_600);
        assert_eq!(entries[4].2, (5, 1));
        assert_eq!(entries[1].1, 0o040_755);
    }

    #[test]
    fn host_file_keeps_mode_and_bytes() {
        let dir = std::env::temp_dir().join(format!("cpio-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"abcdefg").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o750)).unwrap();
        let mut t = Tree::new();
        t.host_file("/f", &p).unwrap();
        let mut buf = Vec::new();
        t.write_newc(&mut buf).unwrap();
        let e = parse(&buf);
        assert_eq!(e[0].1, 0o100_750);
        assert_eq!(e[0].3, b"abcdefg");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_dotdot_and_root() {
        assert!(normalise("/a/../b").is_err());
        assert!(normalise("/").is_err());
        assert_eq!(normalise("//a/./b/").unwrap(), "a/b");
        assert!(Tree::new()
            .host_file("/x", Path::new("/nonexistent/zzz"))
            .is_err());
    }
}
