//! [`ExecContext::builder`]: a context for unit tests of components,
//! without a launcher, stores or a run.
//!
//! Defaults are safe: outputs go to a fresh temporary folder (removed with
//! the context), the registry publishes nothing and records what it was
//! asked ([`RecordingRegistry`]), the cancel token is fresh, and the log is
//! kept in memory ([`LogBuffer`]) so a test can read it.

use crate::exec::{AliasMove, CancelToken, ExecContext, InputArtifact, ModelRefResolution, ModelRegistry, Published};
use crate::spec::ArtifactType;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One call of [`ModelRegistry::publish`], as the registry received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishCall {
    pub model_name: String,
    pub model_digest: String,
    pub run_id: i64,
    pub alias: Option<AliasMove>,
}

/// A registry that records every publish and answers with what it was
/// given, or refuses (`Err`) when it was given nothing.
#[derive(Default)]
pub struct RecordingRegistry {
    calls: Mutex<Vec<PublishCall>>,
    answer: Option<Published>,
}

impl RecordingRegistry {
    /// Refuses every publish (and records it).
    pub fn refusing() -> Self {
        Self::default()
    }

    /// Answers every publish with `answer`.
    pub fn answering(answer: Published) -> Self {
        Self { calls: Mutex::new(Vec::new()), answer: Some(answer) }
    }

    pub fn calls(&self) -> Vec<PublishCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl ModelRegistry for RecordingRegistry {
    fn publish(
        &self,
        model_name: &str,
        model: &InputArtifact,
        run_id: i64,
        alias: Option<AliasMove>,
    ) -> Result<Published, String> {
        let call = PublishCall { model_name: model_name.into(), model_digest: model.digest.clone(), run_id, alias };
        if let Ok(mut c) = self.calls.lock() {
            c.push(call);
        }
        self.answer.clone().ok_or_else(|| "this test registry publishes nothing".to_string())
    }
}

/// A log kept in memory; clones share it.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        self.0.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Builds an [`ExecContext`] for a test; see the module doc for defaults.
pub struct ExecContextBuilder {
    step: String,
    run_id: i64,
    params: Map<String, Json>,
    inputs: BTreeMap<String, InputArtifact>,
    outputs: Vec<(String, ArtifactType)>,
    output_dir: Option<PathBuf>,
    base_dir: PathBuf,
    cancel: CancelToken,
    registry: Arc<dyn ModelRegistry>,
    log: LogBuffer,
    model_refs: BTreeMap<String, ModelRefResolution>,
}

impl ExecContext {
    /// A context for unit tests of components.
    pub fn builder() -> ExecContextBuilder {
        ExecContextBuilder {
            step: "test".into(),
            run_id: 1,
            params: Map::new(),
            inputs: BTreeMap::new(),
            outputs: Vec::new(),
            output_dir: None,
            base_dir: std::env::temp_dir(),
            cancel: CancelToken::new(),
            registry: Arc::new(RecordingRegistry::refusing()),
            log: LogBuffer::default(),
            model_refs: BTreeMap::new(),
        }
    }
}

impl ExecContextBuilder {
    pub fn step(mut self, step: &str) -> Self {
        self.step = step.into();
        self
    }

    pub fn run_id(mut self, run_id: i64) -> Self {
        self.run_id = run_id;
        self
    }

    /// The parameters, as a JSON object (anything else gives none).
    pub fn params(mut self, params: Json) -> Self {
        self.params = params.as_object().cloned().unwrap_or_default();
        self
    }

    pub fn param(mut self, name: &str, value: Json) -> Self {
        self.params.insert(name.into(), value);
        self
    }

    pub fn input(mut self, port: &str, artifact: InputArtifact) -> Self {
        self.inputs.insert(port.into(), artifact);
        self
    }

    /// An input from a file, its digest the file's blake3 as the launcher would give it.
    pub fn input_file(self, port: &str, ty: ArtifactType, path: &Path) -> Self {
        let digest = std::fs::read(path).map(|b| crate::digest_bytes(&b)).unwrap_or_default();
        let artifact = InputArtifact { path: path.to_path_buf(), digest, ty, properties: Json::Null };
        self.input(port, artifact)
    }

    pub fn output(mut self, name: &str, ty: ArtifactType) -> Self {
        self.outputs.push((name.into(), ty));
        self
    }

    /// Outputs go here instead of a temporary folder (kept afterwards).
    pub fn output_dir(mut self, dir: &Path) -> Self {
        self.output_dir = Some(dir.to_path_buf());
        self
    }

    pub fn base_dir(mut self, dir: &Path) -> Self {
        self.base_dir = dir.to_path_buf();
        self
    }

    pub fn cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }

    pub fn registry(mut self, registry: Arc<dyn ModelRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// The log goes here; read it with [`LogBuffer::text`].
    pub fn log(mut self, log: LogBuffer) -> Self {
        self.log = log;
        self
    }

    pub fn model_ref(mut self, port: &str, resolution: ModelRefResolution) -> Self {
        self.model_refs.insert(port.into(), resolution);
        self
    }

    pub fn build(self) -> ExecContext {
        let (output_dir, owned) = match self.output_dir {
            Some(d) => (d, None),
            None => {
                let d = fresh_temp_dir();
                (d.clone(), Some(d))
            }
        };
        let _ = std::fs::create_dir_all(&output_dir);
        let log_path = output_dir.join(format!("{}.log", self.step));
        let ctx = ExecContext::new(
            self.step,
            self.run_id,
            self.params,
            self.inputs,
            self.outputs,
            output_dir,
            self.base_dir,
            self.cancel,
            self.registry,
            log_path,
            Box::new(self.log),
        )
        .with_model_refs(self.model_refs);
        ctx.owning_output_dir(owned)
    }
}

/// A folder of its own under the system's temporary folder.
fn fresh_temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("flywheel-test-{}-{n}-{nanos}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_built_context_has_a_temp_output_dir_removed_with_it_and_a_readable_log() {
        let log = LogBuffer::default();
        let ctx = ExecContext::builder().param("top_k", json!(3)).log(log.clone()).build();
        let dir = ctx.output_dir.clone();
        assert!(dir.is_dir());
        assert_eq!(ctx.params["top_k"], json!(3));
        ctx.log("hello");
        assert_eq!(log.text(), "hello\n");
        drop(ctx);
        assert!(!dir.exists());
    }

    #[test]
    fn the_default_registry_refuses_and_records() {
        let ctx = ExecContext::builder().build();
        let model =
            InputArtifact { path: "m".into(), digest: "d".into(), ty: ArtifactType::Model, properties: json!({}) };
        assert!(ctx.registry.publish("bikes", &model, 7, None).is_err());
        let recording = RecordingRegistry::refusing();
        let _ = recording.publish("bikes", &model, 7, None);
        assert_eq!(recording.calls()[0].model_digest, "d");
    }
}
