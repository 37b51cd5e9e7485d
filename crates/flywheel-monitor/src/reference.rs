//! What a version's windows are compared with: the data it was trained
//! on, kept by the pipeline's `statistics` step as a reference (its
//! columns' distributions without the rows), else read and profiled; and
//! the model's inputs.

use crate::{MonitorError, store};
use flywheel_core::{ModelRef, Selector};
use flywheel_data::dataset_drift::DatasetReference;
use flywheel_metadata::ArtifactRecord;
use flywheel_registry::Home;

/// What one version is compared with: its training data, kept as a
/// reference (none for a model imported without it), and its input columns.
pub(crate) struct Reference {
    pub(crate) training: Option<DatasetReference>,
    pub(crate) inputs: Vec<String>,
}

/// The training data of `model@version` (what fed its training step's
/// `data`) as a reference, and its inputs.
pub(crate) async fn reference(home: &Home, model: &str, version: i64) -> Result<Reference, MonitorError> {
    let r = ModelRef { name: model.to_string(), selector: Selector::Version(version) };
    let (_, loaded) = home.load_model(&r).await.map_err(|e| MonitorError::Store(e.to_string()))?;
    let inputs = loaded.signature.inputs.iter().map(|i| i.name.clone()).collect();
    let found =
        home.metadata.resolve_model_ref(model, &Selector::Version(version), Some("data"), i64::MAX).map_err(store)?;
    let training = match found {
        Some((artifact, _)) => Some(kept(home, &artifact).await?),
        None => None,
    };
    Ok(Reference { training, inputs })
}

/// The reference the `statistics` step kept of `data`; for a pipeline
/// without one (or statistics made before references were kept), the data
/// read and profiled here.
async fn kept(home: &Home, data: &ArtifactRecord) -> Result<DatasetReference, MonitorError> {
    let local = |digest: String| async move {
        home.artifacts.local_path(&digest).await.map_err(|e| MonitorError::Store(e.to_string()))
    };
    if let Some(stats) = home.metadata.statistics_of(data.id).map_err(store)? {
        let json = flywheel_data::table::read_json(&local(stats.digest.clone()).await?)?;
        if let Some(r) = json.get("reference") {
            return serde_json::from_value(r.clone())
                .map_err(|e| MonitorError::Store(format!("statistics artifact {}: its reference: {e}", stats.id)));
        }
    }
    let table = flywheel_data::table::read_parquet(&local(data.digest.clone()).await?)?;
    Ok(DatasetReference::of_table(&table))
}
