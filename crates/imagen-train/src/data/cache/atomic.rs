//! Crash-safe file writes: a temporary file, synced, then renamed over the target.

use std::io::Write;
use std::path::Path;

use crate::data::DataError;

/// Writes `bytes` to `path` so that readers see the old file or the new
/// one, never a partial one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    {
        let mut file = std::fs::File::create(tmp).map_err(DataError::io(tmp))?;
        file.write_all(bytes).map_err(DataError::io(tmp))?;
        file.sync_all().map_err(DataError::io(tmp))?;
    }
    std::fs::rename(tmp, path).map_err(DataError::io(path))
}
