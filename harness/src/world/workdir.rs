//! Work directories of namespace mode and `serve`: where configs, queues and logs go.
//!
//! danesim often runs as root, and the system temp directory is shared: a predictable name
//! there (`danesim-postfix-<pid>`) would let a local user create it first, or plant a
//! symlink in it, and aim root's writes anywhere. So a directory danesim picks is always
//! new, with an unpredictable name and mode 0700 (`tempfile`), and never reused; one the
//! user names with `--workdir` is made absolute (the programs of the run change directory,
//! and unbound reads its paths relative to its own) and must be new, or an empty directory
//! of the user's own. Anything else is refused (exit 2): an existing non-empty directory, a
//! symlink, a file, another user's directory.
//!
//! The programs of a run that drop privileges (Postfix's and Exim's own users) are given
//! search permission on it where they need it (mode 0711 at most: pass through, never
//! list or write), by the adapters and the world clock.

use super::error::LabError;
use super::namespace::effective_uid;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A new directory under the system temp directory, named `PREFIX` plus random characters,
/// mode 0700, removed when the value is dropped.
pub fn scratch(prefix: &str) -> Result<TempDir, LabError> {
    scratch_in(&std::env::temp_dir(), prefix)
}

/// As [`scratch`], under `parent`.
pub fn scratch_in(parent: &Path, prefix: &str) -> Result<TempDir, LabError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(|source| LabError::Write {
            path: parent.join(format!("{prefix}...")),
            source,
        })
}

/// A new directory like [`scratch`] that is kept after the run (its logs are for reading).
pub fn fresh(prefix: &str) -> Result<PathBuf, LabError> {
    Ok(scratch(prefix)?.keep())
}

/// The directory the user named with `--workdir`, as an absolute path: created (mode 0700,
/// parents as needed) if it does not exist; if it does, it must be a directory (not a
/// symlink) that belongs to this user and is empty, and its mode is set to 0700.
pub fn claim(dir: &Path) -> Result<PathBuf, LabError> {
    let refuse = |path: &Path, why: String| LabError::Workdir {
        path: path.to_path_buf(),
        why,
    };
    let abs = std::path::absolute(dir).map_err(|e| refuse(dir, format!("cannot make it absolute: {e}")))?;
    match std::fs::symlink_metadata(&abs) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = abs.parent() {
                std::fs::create_dir_all(parent).map_err(|source| LabError::Write {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            // create, not create_dir_all: if someone made it in the meantime, that is refused.
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&abs)
                .map_err(|e| refuse(&abs, format!("cannot create it: {e}")))?;
        }
        Err(e) => return Err(refuse(&abs, format!("cannot read it: {e}"))),
        Ok(m) if m.file_type().is_symlink() => {
            return Err(refuse(&abs, "is a symbolic link".into()));
        }
        Ok(m) if !m.is_dir() => return Err(refuse(&abs, "exists and is not a directory".into())),
        Ok(m) if Some(m.uid()) != effective_uid() => {
            return Err(refuse(&abs, format!("belongs to uid {}, not to you", m.uid())));
        }
        Ok(_) => {
            let mut entries = std::fs::read_dir(&abs).map_err(|e| refuse(&abs, format!("cannot list it: {e}")))?;
            if entries.next().is_some() {
                return Err(refuse(
                    &abs,
                    "is not empty (a work directory is never reused: the logs of one run would mix with another's)"
                        .into(),
                ));
            }
            std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| refuse(&abs, format!("cannot set its mode to 0700: {e}")))?;
        }
    }
    Ok(abs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
    }

    #[test]
    fn scratch_directories_are_new_private_and_unpredictable() {
        let parent = tempfile::tempdir().expect("a temp dir");
        let a = scratch_in(parent.path(), "danesim-x-").expect("created");
        let b = scratch_in(parent.path(), "danesim-x-").expect("created");
        assert_ne!(a.path(), b.path());
        assert_eq!(mode(a.path()), 0o700);
        let name = a.path().file_name().and_then(|n| n.to_str()).expect("a name");
        assert!(
            name.starts_with("danesim-x-") && name.len() > "danesim-x-".len(),
            "{name}"
        );
    }

    #[test]
    fn a_new_or_empty_own_workdir_is_claimed_with_mode_0700_and_made_absolute() {
        let parent = tempfile::tempdir().expect("a temp dir");
        let new = parent.path().join("a/b");
        let got = claim(&new).expect("a new directory is created");
        assert_eq!(got, new);
        assert_eq!(mode(&new), 0o700);
        let empty = parent.path().join("empty");
        std::fs::create_dir(&empty).expect("created");
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        claim(&empty).expect("an empty directory of ours is accepted");
        assert_eq!(mode(&empty), 0o700);
        let relative = claim(Path::new("target-of-no-one-danesim-test")).map(|p| {
            let _ = std::fs::remove_dir(&p);
            p
        });
        assert!(relative.expect("a relative path is accepted").is_absolute());
    }

    #[test]
    fn a_non_empty_directory_a_symlink_or_a_file_is_refused() {
        let parent = tempfile::tempdir().expect("a temp dir");
        let full = parent.path().join("full");
        std::fs::create_dir(&full).expect("created");
        std::fs::write(full.join("maillog"), "old").expect("written");
        let link = parent.path().join("link");
        let target = parent.path().join("target");
        std::fs::create_dir(&target).expect("created");
        symlink(&target, &link).expect("a symlink");
        let file = parent.path().join("file");
        std::fs::write(&file, "").expect("written");
        for (p, why) in [
            (&full, "is not empty"),
            (&link, "is a symbolic link"),
            (&file, "is not a directory"),
        ] {
            let e = claim(p).expect_err("refused").to_string();
            assert!(e.contains(why) && e.contains(&p.display().to_string()), "{e}");
        }
        // Nothing was written through the link.
        assert_eq!(std::fs::read_dir(&target).expect("listable").count(), 0);
    }
}
