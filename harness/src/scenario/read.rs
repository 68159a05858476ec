//! Scenario files on disk, within the input limits (scenarios/README.md, "Limits"):
//! discovery of `*.toml` below directories, and reading one file.
//!
//! Only regular files are read, at most [`MAX_SCENARIO_BYTES`], and only UTF-8 text (a FIFO
//! would block, `/dev/zero` would never end, and UTF-16 would be misread). Discovery follows
//! directory links but refuses a link back to an ancestor, walks each directory once however
//! many links lead to it, and goes at most [`MAX_DEPTH`] directories deep, so that a few links
//! cannot make it loop or grow exponentially.

use super::error::{MAX_SCENARIO_BYTES, ScenarioError};
use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// How deep discovery goes below a directory it was given.
pub const MAX_DEPTH: usize = 32;

/// Every `*.toml` below `paths` (files are taken as they are), sorted, so runs list scenarios
/// in one order.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut out = BTreeSet::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| ScenarioError::Read {
            path: p.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.insert(p.clone());
        }
    }
    Ok(out.into_iter().collect())
}

fn walk(root: &Path, out: &mut BTreeSet<PathBuf>) -> Result<(), ScenarioError> {
    // Directories already walked, by (device, inode): a second link to one adds nothing.
    let mut walked: HashSet<(u64, u64)> = HashSet::new();
    let mut it = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .max_depth(MAX_DEPTH + 1)
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map_or_else(|| root.to_path_buf(), Path::to_path_buf);
                if let Some(ancestor) = e.loop_ancestor() {
                    return Err(ScenarioError::LinkLoop {
                        path: path.display().to_string(),
                        ancestor: ancestor.display().to_string(),
                    });
                }
                let not_found = e.io_error().is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound);
                if is_toml(&path) {
                    // A dangling `*.toml` link: loading it says so, with the rest of the list.
                    out.insert(path);
                    continue;
                }
                if not_found {
                    // A dangling link to something else is no scenario (as before walkdir).
                    continue;
                }
                return Err(ScenarioError::Read {
                    path: path.display().to_string(),
                    source: e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("cannot walk the directory")),
                });
            }
        };
        if entry.file_type().is_dir() {
            if entry.depth() > MAX_DEPTH {
                return Err(ScenarioError::TooDeep {
                    path: entry.path().display().to_string(),
                    limit: MAX_DEPTH,
                });
            }
            let meta = entry.metadata().map_err(|e| ScenarioError::Read {
                path: entry.path().display().to_string(),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("cannot read metadata")),
            })?;
            if !walked.insert((meta.dev(), meta.ino())) {
                it.skip_current_dir();
            }
        } else if is_toml(entry.path()) {
            out.insert(entry.into_path());
        }
    }
    Ok(())
}

fn is_toml(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "toml")
}

/// The text of one scenario file. Refuses what is not a regular file (checked before opening,
/// and again on the opened file, in case the path changed in between), a file over
/// [`MAX_SCENARIO_BYTES`] and text that is not UTF-8.
pub fn read_source(path: &Path) -> Result<String, ScenarioError> {
    let read_err = |source| ScenarioError::Read {
        path: path.display().to_string(),
        source,
    };
    let not_regular = |meta: &std::fs::Metadata| -> Result<(), ScenarioError> {
        match kind(meta) {
            None => Ok(()),
            Some(kind) => Err(ScenarioError::NotRegular {
                path: path.display().to_string(),
                kind,
            }),
        }
    };
    not_regular(&std::fs::metadata(path).map_err(read_err)?)?;
    // O_NONBLOCK: should the path have become a FIFO since, opening it does not wait for a
    // writer; it has no effect on a regular file.
    let file = File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    not_regular(&meta)?;
    let too_large = || ScenarioError::TooLarge {
        path: path.display().to_string(),
        limit: MAX_SCENARIO_BYTES,
    };
    if meta.len() > MAX_SCENARIO_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while read still stops at the limit.
    file.take(MAX_SCENARIO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(too_large());
    }
    decode(path, bytes)
}

/// What a non-regular file is, for the error; `None` for a regular file.
fn kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a file"
    })
}

/// UTF-8 text, or an error at the first byte that is not (with its byte offset). A UTF-8 byte
/// order mark is accepted (TOML parsers skip it); UTF-16 is recognised by its mark and refused.
pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, ScenarioError> {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        let order = if bytes[0] == 0xff {
            "little-endian"
        } else {
            "big-endian"
        };
        return Err(ScenarioError::at(
            path,
            "",
            0..0,
            format!(
                "the file is UTF-16 ({order}: it starts with the byte order mark 0x{:02x} 0x{:02x}), not UTF-8",
                bytes[0], bytes[1]
            ),
            "here",
            Some("save it as UTF-8 (TOML files are UTF-8, toml.io §Spec); a UTF-8 byte order mark is accepted".into()),
        ));
    }
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes()[at];
            // The lossy text equals the file up to `at`, so the line and column are the file's.
            let text = String::from_utf8_lossy(e.as_bytes());
            Err(ScenarioError::at(
                path,
                &text,
                at..at + 1,
                format!("not UTF-8 (invalid byte 0x{byte:02x} at byte offset {at})"),
                "here",
                Some("save the file as UTF-8 (TOML files are UTF-8, toml.io §Spec)".into()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_located_with_its_byte_offset() {
        let e = decode(Path::new("x.toml"), b"id = \"a\"\nk = \"\xff\"\n".to_vec()).unwrap_err();
        let s = e.to_string();
        assert_eq!(s, "x.toml:2:6: not UTF-8 (invalid byte 0xff at byte offset 14)");
    }

    #[test]
    fn utf16_is_named() {
        for bom in [[0xff, 0xfe], [0xfe, 0xff]] {
            let mut b = bom.to_vec();
            b.extend_from_slice(b"i\0d\0");
            let s = decode(Path::new("x.toml"), b).unwrap_err().to_string();
            assert!(s.starts_with("x.toml:1:1: the file is UTF-16"), "{s}");
        }
    }

    #[test]
    fn a_utf8_byte_order_mark_is_accepted() {
        assert_eq!(
            decode(Path::new("x.toml"), b"\xef\xbb\xbfid = 1".to_vec()).unwrap(),
            "\u{feff}id = 1"
        );
    }
}
