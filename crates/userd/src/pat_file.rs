//! The admin token file written at first start.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file prepared next to its final place before the token is recorded in the
/// database, so a directory that cannot be written stops start-up before anything is
/// committed.
pub struct PendingPatFile {
    temporary: PathBuf,
    destination: PathBuf,
}

impl PendingPatFile {
    pub fn prepare(destination: &Path) -> std::io::Result<PendingPatFile> {
        if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let mut name = destination
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "admin.pat".into());
        name.push(format!(".{}.tmp", std::process::id()));
        let temporary = destination.with_file_name(name);
        open_private(&temporary)?;
        Ok(PendingPatFile {
            temporary,
            destination: destination.to_path_buf(),
        })
    }

    /// Writes the token and moves the file into place atomically.
    pub fn commit(self, token: &str) -> std::io::Result<()> {
        let mut file = open_private(&self.temporary)?;
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&self.temporary, &self.destination)
    }

    pub fn abandon(self) {
        let _ = fs::remove_file(&self.temporary);
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` only applies to new files; a leftover file keeps its old mode otherwise.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_token_lands_in_a_0600_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/admin.pat");
        let pending = PendingPatFile::prepare(&path).unwrap();
        pending.commit("userd_pat_x").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "userd_pat_x\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn an_abandoned_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.pat");
        PendingPatFile::prepare(&path).unwrap().abandon();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
