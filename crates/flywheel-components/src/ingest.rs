//! `ingest`: reads CSV, CSV.gz or Parquet and splits it into train and eval
//! Parquet datasets, by a stable hash of a key column or by time (a cutoff,
//! or the newest share of the rows). With a `logs` input (`@logs:MODEL`),
//! the rows the model served and got labels for join the file's
//! (`ingest/logs.rs`): data that only arrives through serving.

mod logs;
mod spans;

use flywheel_core::{
    ArtifactType, ComponentSpec, ExecContext, ExecError, ParamProblem, ParamSpec, ParamType, PortSpec, TypedComponent,
};
use flywheel_data::table::{ReadOptions, Table, suggest, type_name, write_parquet};
use serde_json::json;
use std::collections::BTreeMap;

pub struct Ingest;

pub static SPEC: ComponentSpec = ComponentSpec {
    name: "ingest",
    version: "3",
    description: "Reads CSV, CSV.gz or Parquet (and, wired to `@logs:MODEL`, the served rows that got labels) and splits it into train and eval datasets (Parquet).",
    params: &[
        ParamSpec {
            name: "path",
            ty: ParamType::Path,
            required: true,
            doc: "the data: a file, a folder of spans, or a glob (`incoming/*.csv`), relative to the pipeline file",
        },
        ParamSpec {
            name: "columns",
            ty: ParamType::StringMap,
            required: false,
            doc: "declared column types (int, float, string, bool, timestamp); others are inferred",
        },
        ParamSpec {
            name: "delimiter",
            ty: ParamType::String,
            required: false,
            doc: "the CSV delimiter: `,` `;` `tab` `|` (default: detected)",
        },
        ParamSpec { name: "drop", ty: ParamType::StringList, required: false, doc: "columns to leave out" },
        ParamSpec {
            name: "missing_values",
            ty: ParamType::StringList,
            required: false,
            doc: "values read as missing (default: empty, NA, N/A, NaN, null, None)",
        },
        ParamSpec {
            name: "split",
            ty: ParamType::Enum(&["hash", "time"]),
            required: false,
            doc: "how to split: `hash` of a key column (default) or `time` (a cutoff, or the newest `eval_fraction` of the rows)",
        },
        ParamSpec {
            name: "split_key",
            ty: ParamType::String,
            required: false,
            doc: "column whose hash assigns a row to eval (default: the whole row)",
        },
        ParamSpec {
            name: "eval_fraction",
            ty: ParamType::Float,
            required: false,
            doc: "share of rows in eval (default 0.2); for a time split without `cutoff`, the newest rows",
        },
        ParamSpec {
            name: "time_column",
            ty: ParamType::String,
            required: false,
            doc: "column ordered in time, for a time split",
        },
        ParamSpec {
            name: "cutoff",
            ty: ParamType::String,
            required: false,
            doc: "rows at or after this time go to eval (compared as instants for a date or time column, as numbers for a numeric one)",
        },
        ParamSpec {
            name: "spans_last",
            ty: ParamType::Int,
            required: false,
            doc: "with a folder or glob `path`: only the newest N spans by name (default: all)",
        },
        ParamSpec {
            name: "logs_label",
            ty: ParamType::String,
            required: false,
            doc: "with a `logs` input: the column the feedback labels fill (the training target, e.g. `cnt`)",
        },
        ParamSpec {
            name: "logs_last",
            ty: ParamType::Int,
            required: false,
            doc: "with a `logs` input: only the newest N labeled rows (default: all)",
        },
        ParamSpec {
            name: "logs_since",
            ty: ParamType::String,
            required: false,
            doc: "with a `logs` input: only rows served at or after this time, e.g. \"2026-11-30 12:00\" (UTC; empty: all)",
        },
    ],
    inputs: &[PortSpec {
        name: "logs",
        ty: ArtifactType::Dataset,
        doc: "a model's prediction log with feedback labels (`@logs:MODEL`); its labeled rows join the file's",
        optional: true,
    }],
    outputs: &[
        PortSpec { name: "train", ty: ArtifactType::Dataset, doc: "training rows", optional: false },
        PortSpec { name: "eval", ty: ArtifactType::Dataset, doc: "evaluation rows", optional: false },
    ],
    dynamic_ports: false,
};

/// A stable 64-bit hash (FNV-1a, then a splitmix64 finalizer to spread the
/// bits): the split must not change between Flywheel versions or platforms.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn column(t: &Table, name: &str, param: &str) -> Result<usize, ExecError> {
    t.column_index(name).ok_or_else(|| {
        let names = t.column_names();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        ExecError::failed(format!("`{param}` = \"{name}\" is not a column of the data{}", suggest(name, &refs)))
    })
}

/// Rows at or after `cutoff`, compared as instants.
fn time_mask(t: &Table, i: usize, col_name: &str, cutoff: &str) -> Result<Vec<Option<bool>>, ExecError> {
    let c = flywheel_stats::time::parse(cutoff).ok_or_else(|| {
        ExecError::failed(format!(
            "`cutoff` = \"{cutoff}\" must be a date or time (e.g. \"2012-07-01\" or \"2012-07-01 12:00\"): `{col_name}` holds times"
        ))
    })?;
    let at = c.micros as f64 / 1e6;
    let mut mask = Vec::with_capacity(t.rows());
    for b in &t.batches {
        mask.extend(flywheel_data::table::seconds(b.column(i)).into_iter().map(|v| v.map(|x| x >= at)));
    }
    Ok(mask)
}

/// `ingest`'s parameters (see [`SPEC`]).
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub path: String,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    pub delimiter: Option<String>,
    #[serde(default)]
    pub drop: Vec<String>,
    pub missing_values: Option<Vec<String>>,
    pub split: Option<String>,
    pub split_key: Option<String>,
    #[serde(default = "default_eval_fraction")]
    pub eval_fraction: f64,
    pub time_column: Option<String>,
    pub cutoff: Option<String>,
    pub logs_label: Option<String>,
    pub logs_last: Option<u64>,
    pub logs_since: Option<String>,
    pub spans_last: Option<u64>,
}

fn default_eval_fraction() -> f64 {
    0.2
}

/// true = eval.
fn split_mask(params: &Params, t: &Table) -> Result<Vec<bool>, ExecError> {
    match params.split.as_deref().unwrap_or("hash") {
        "time" => time_split(params, t),
        _ => hash_split(params, t),
    }
}

/// Rows at or after `cutoff` in `time_column` go to eval; without a
/// cutoff, the newest `eval_fraction` of the rows.
fn time_split(params: &Params, t: &Table) -> Result<Vec<bool>, ExecError> {
    let col_name =
        params.time_column.as_deref().ok_or_else(|| ExecError::failed("a time split needs `time_column`"))?;
    let i = column(t, col_name, "time_column")?;
    let mask = match params.cutoff.as_deref() {
        Some(cutoff) => cutoff_mask(t, i, col_name, cutoff)?,
        None => newest_mask(t, i, params.eval_fraction),
    };
    let missing = mask.iter().filter(|m| m.is_none()).count();
    if missing > 0 {
        let served = if params.logs_label.is_some() {
            format!(
                " (a served row has one when the model reads `{col_name}`, or when it is a date, a time or \
                 text: then it is when the row was served)"
            )
        } else {
            String::new()
        };
        return Err(ExecError::failed(format!(
            "time column `{col_name}` has {missing} missing values; rows without a time cannot be split{served}"
        )));
    }
    Ok(mask.into_iter().map(|m| m.unwrap_or(false)).collect())
}

fn cutoff_mask(t: &Table, i: usize, col_name: &str, cutoff: &str) -> Result<Vec<Option<bool>>, ExecError> {
    let dt = t.schema.field(i).data_type();
    Ok(if type_name(dt) == "timestamp" {
        time_mask(t, i, col_name, cutoff)?
    } else if flywheel_data::table::is_numeric(dt) {
        let c: f64 = cutoff.parse().map_err(|_| {
            ExecError::failed(format!("`cutoff` = \"{cutoff}\" must be a number: `{col_name}` is numeric"))
        })?;
        t.f64_column(i).into_iter().map(|v| v.map(|x| x >= c)).collect()
    } else {
        t.str_column(i).into_iter().map(|v| v.map(|s| s.as_str() >= cutoff)).collect()
    })
}

/// The newest `fraction` of the rows by time (rows of one time together,
/// so the share is at most a time's rows off).
fn newest_mask(t: &Table, i: usize, fraction: f64) -> Vec<Option<bool>> {
    let dt = t.schema.field(i).data_type();
    let keys: Vec<Option<f64>> = if type_name(dt) == "timestamp" {
        t.batches.iter().flat_map(|b| flywheel_data::table::seconds(b.column(i))).collect()
    } else if flywheel_data::table::is_numeric(dt) {
        t.f64_column(i)
    } else {
        // Text orders as written (ISO dates do): ranked, then split as numbers.
        let text = t.str_column(i);
        let mut sorted: Vec<&String> = text.iter().flatten().collect();
        sorted.sort();
        sorted.dedup();
        text.iter().map(|v| v.as_ref().and_then(|s| sorted.binary_search(&s).ok()).map(|r| r as f64)).collect()
    };
    let mut known: Vec<f64> = keys.iter().flatten().copied().filter(|k| !k.is_nan()).collect();
    known.sort_by(f64::total_cmp);
    let at = ((known.len() as f64) * (1.0 - fraction)).floor() as usize;
    let threshold = known.get(at.min(known.len().saturating_sub(1))).copied().unwrap_or(f64::INFINITY);
    keys.into_iter().map(|k| k.filter(|k| !k.is_nan()).map(|k| k >= threshold)).collect()
}

/// A row goes to eval when the hash of its key (`split_key`, else the
/// whole row) falls in the first `eval_fraction` of the hash range.
fn hash_split(params: &Params, t: &Table) -> Result<Vec<bool>, ExecError> {
    let fraction = params.eval_fraction;
    if !(0.0 < fraction && fraction < 1.0) {
        return Err(ExecError::failed(format!("`eval_fraction` = {fraction} must be between 0 and 1 (exclusive)")));
    }
    let threshold = (fraction * u64::MAX as f64) as u64;
    let keys: Vec<Vec<u8>> = match params.split_key.as_deref() {
        Some(k) => {
            let i = column(t, k, "split_key")?;
            t.str_column(i).into_iter().map(|v| v.unwrap_or_default().into_bytes()).collect()
        }
        None => {
            let cols: Vec<Vec<Option<String>>> = (0..t.schema.fields().len()).map(|i| t.str_column(i)).collect();
            (0..t.rows())
                .map(|r| {
                    let mut key = Vec::new();
                    for c in &cols {
                        key.extend_from_slice(c[r].as_deref().unwrap_or("\u{0}").as_bytes());
                        key.push(0x1f);
                    }
                    key
                })
                .collect()
        }
    };
    Ok(keys.iter().map(|k| stable_hash(k) < threshold).collect())
}

/// A hash split takes a fraction strictly between 0 and 1; a time split
/// needs its column and cutoff.
fn check_split(params: &Params) -> Vec<ParamProblem> {
    let mut out = Vec::new();
    let f = params.eval_fraction;
    if !(f > 0.0 && f < 1.0) {
        out.push(ParamProblem::value(
            &["eval_fraction"],
            format!("`eval_fraction` = {f} must be between 0 and 1 (exclusive)"),
        ));
    }
    if params.split.as_deref() == Some("time") && params.time_column.is_none() {
        out.push(
            ParamProblem::value(&["split"], "a time split needs `time_column`").help("add `time_column = \"date\"`"),
        );
    }
    if let Some(t) = params.logs_since.as_deref().filter(|t| !t.trim().is_empty())
        && flywheel_stats::time::parse(t.trim()).is_none()
    {
        out.push(
            ParamProblem::value(&["logs_since"], format!("`logs_since` = \"{t}\" is not a date or time"))
                .help("for example \"2026-11-30\" or \"2026-11-30 12:00:00\" (UTC)"),
        );
    }
    if params.spans_last == Some(0) {
        out.push(
            ParamProblem::value(&["spans_last"], "`spans_last` = 0 reads no span")
                .help("leave it out to read them all"),
        );
    }
    if params.logs_last == Some(0) {
        out.push(
            ParamProblem::value(&["logs_last"], "`logs_last` = 0 takes no logged rows")
                .help("leave it out to take them all"),
        );
    }
    out
}

impl TypedComponent for Ingest {
    type Params = Params;

    fn spec(&self) -> &'static ComponentSpec {
        &SPEC
    }

    fn check(&self, params: &Params) -> Vec<ParamProblem> {
        check_split(params)
    }

    fn run(&self, params: Params, ctx: &ExecContext) -> Result<(), ExecError> {
        let path = ctx.resolve_path(&params.path);
        let delimiter = params
            .delimiter
            .as_deref()
            .map(flywheel_data::delimited::parse_delimiter)
            .transpose()
            .map_err(|e| ExecError::failed(format!("`delimiter`: {e}")))?;
        let opts = ReadOptions {
            columns: params.columns.clone(),
            missing_values: params.missing_values.clone(),
            delimiter,
            ..Default::default()
        };
        let table = spans::read(ctx, &path, &opts, params.spans_last)?;
        ctx.cancel.check()?;
        let drop = &params.drop;
        for d in drop {
            column(&table, d, "drop")?;
        }
        let table = table.without(drop).map_err(|e| ExecError::failed(e.to_string()))?;
        let table = match ctx.inputs.get("logs") {
            Some(logs) => logs::joined(ctx, &params, table, &logs.path)?,
            None => table,
        };
        let mask = split_mask(&params, &table)?;
        let eval = table.filter(&mask).map_err(|e| ExecError::failed(e.to_string()))?;
        let not: Vec<bool> = mask.iter().map(|m| !m).collect();
        let train = table.filter(&not).map_err(|e| ExecError::failed(e.to_string()))?;
        if train.rows() == 0 || eval.rows() == 0 {
            return Err(ExecError::failed(format!(
                "the split left {} training and {} evaluation rows; both need rows (check `eval_fraction` or `cutoff`)",
                train.rows(),
                eval.rows()
            )));
        }
        let schema: serde_json::Map<String, serde_json::Value> =
            table.schema.fields().iter().map(|f| (f.name().clone(), json!(type_name(f.data_type())))).collect();
        ctx.log(format!(
            "read {} rows × {} columns from {}",
            table.rows(),
            table.schema.fields().len(),
            path.display()
        ));
        ctx.log(format!("split: {} train, {} eval", train.rows(), eval.rows()));
        for (name, part) in [("train", &train), ("eval", &eval)] {
            write_parquet(&ctx.output_path(name), part)?;
            ctx.set_properties(
                name,
                json!({ "rows": part.rows(), "columns": part.schema.fields().len(), "schema": schema }),
            );
        }
        ctx.add_summary("rows", json!({ "train": train.rows(), "eval": eval.rows() }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{newest_mask, stable_hash};
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use flywheel_data::table::Table;
    use std::sync::Arc;

    fn one_column(name: &str, col: ArrayRef) -> Table {
        let schema = Arc::new(Schema::new(vec![Field::new(name, col.data_type().clone(), true)]));
        Table { schema: schema.clone(), batches: vec![RecordBatch::try_new(schema, vec![col]).unwrap()] }
    }

    #[test]
    fn a_time_split_without_a_cutoff_takes_the_newest_share_keeping_a_time_together() {
        // Out of order, with a tie at 8: the newest fifth of 10 rows is 2
        // rows; 9 and the two 8s are the newest three, so times >= 9 only.
        let t = one_column("t", Arc::new(Float64Array::from(vec![3.0, 9.0, 1.0, 8.0, 2.0, 8.0, 5.0, 10.0, 4.0, 6.0])));
        let mask: Vec<Option<bool>> = newest_mask(&t, 0, 0.2);
        let eval: Vec<bool> = mask.into_iter().map(|m| m.unwrap()).collect();
        assert_eq!(eval, [false, true, false, false, false, false, false, true, false, false]);
        // ISO text orders as time does.
        let dates = ["2012-01-02", "2011-12-31", "2012-01-01", "2011-06-01", "2012-02-01"];
        let t = one_column("d", Arc::new(StringArray::from(dates.to_vec())));
        let eval: Vec<Option<bool>> = newest_mask(&t, 0, 0.4);
        assert_eq!(eval, [Some(true), Some(false), Some(false), Some(false), Some(true)]);
        assert_eq!(DataType::Utf8, *t.schema.field(0).data_type());
    }

    #[test]
    fn hash_is_stable_across_versions() {
        // Pinned values: changing them would move rows between splits.
        assert_eq!(stable_hash(b""), 17_665_956_581_633_026_203);
        assert_eq!(stable_hash(b"1"), 5_082_256_738_353_065_951);
        assert_eq!(stable_hash(b"instant"), 4_829_583_118_685_328_579);
        let eval =
            (0..10_000).filter(|i| stable_hash(i.to_string().as_bytes()) < (0.2 * u64::MAX as f64) as u64).count();
        assert!((1800..2200).contains(&eval), "{eval}");
    }
}
