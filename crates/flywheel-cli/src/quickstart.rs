//! The quickstart example travels inside the binary: the bike-sharing
//! pipeline and its data (gzip-compressed CSV).

use std::path::{Path, PathBuf};

const PIPELINE: &str = include_str!("../../../examples/bike-sharing/pipeline.toml");
const DATA: &[u8] = include_bytes!("../../../examples/bike-sharing/data/bike_sharing_hourly.csv.gz");
const LICENSE: &str = include_str!("../../../examples/bike-sharing/LICENSE.md");

/// Writes the example under `<home>/quickstart/bike-sharing/` (only files
/// that differ, atomically) and returns the pipeline file's path.
pub fn unpack(home: &Path) -> std::io::Result<PathBuf> {
    let dir = home.join("quickstart").join("bike-sharing");
    std::fs::create_dir_all(dir.join("data"))?;
    write_if_changed(&dir.join("pipeline.toml"), PIPELINE.as_bytes())?;
    write_if_changed(&dir.join("LICENSE.md"), LICENSE.as_bytes())?;
    write_if_changed(&dir.join("data").join("bike_sharing_hourly.csv.gz"), DATA)?;
    Ok(dir.join("pipeline.toml"))
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
