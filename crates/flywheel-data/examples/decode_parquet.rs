//! Decodes a Parquet file with the `parquet` crate and nothing else: the
//! practical throughput limit `bench/stats.py` compares `flywheel stats` with.
//!
//!     cargo run --release -p flywheel-components --example decode_parquet -- FILE

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: decode_parquet FILE")?;
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path)?)?.with_batch_size(8192).build()?;
    let mut rows = 0usize;
    for batch in reader {
        rows += batch?.num_rows();
    }
    println!("{rows}");
    Ok(())
}
