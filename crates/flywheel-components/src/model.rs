//! Flywheel's model format for native linear models: JSON with the feature
//! encoding fitted on the training data, the weights and the classes.
//! Loading it is parsing data, never running code.

use crate::table::{Table, is_numeric, suggest};
use flywheel_core::ExecError;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "flywheel.model/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Linear,
    Logistic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feature {
    /// Standardized; missing values take the training mean.
    Numeric { name: String, mean: f64, std: f64 },
    /// One-hot over `categories`; any other value (or missing) encodes as all zeros.
    Categorical { name: String, categories: Vec<String> },
}

impl Feature {
    pub fn name(&self) -> &str {
        match self {
            Feature::Numeric { name, .. } | Feature::Categorical { name, .. } => name,
        }
    }
    fn width(&self) -> usize {
        match self {
            Feature::Numeric { .. } => 1,
            Feature::Categorical { categories, .. } => categories.len(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub kind: Kind,
    pub target: String,
    pub features: Vec<Feature>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// For classification: `[negative, positive]`.
    pub classes: Option<[String; 2]>,
    pub training: serde_json::Value,
}

impl Model {
    pub fn load(path: &std::path::Path) -> Result<Model, ExecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ExecError::io(format!("cannot read model {}", path.display()), e))?;
        let m: Model = serde_json::from_str(&text)
            .map_err(|e| ExecError::failed(format!("{} is not a Flywheel model: {e}", path.display())))?;
        if m.format != FORMAT {
            return Err(ExecError::failed(format!(
                "model format `{}` is not supported by this build (expects `{FORMAT}`)",
                m.format
            )));
        }
        let width: usize = m.features.iter().map(Feature::width).sum();
        if width != m.weights.len() {
            return Err(ExecError::failed(format!(
                "model is inconsistent: {} weights for {width} encoded features",
                m.weights.len()
            )));
        }
        Ok(m)
    }

    /// Encodes rows of `t` as the model's feature matrix.
    pub fn encode(&self, t: &Table) -> Result<Array2<f64>, ExecError> {
        encode(&self.features, t)
    }

    /// Predictions: the value (linear) or the positive-class probability (logistic).
    pub fn predict(&self, t: &Table) -> Result<Vec<f64>, ExecError> {
        let x = self.encode(t)?;
        let w = ndarray::Array1::from(self.weights.clone());
        let z = x.dot(&w) + self.intercept;
        Ok(match self.kind {
            Kind::Linear => z.to_vec(),
            Kind::Logistic => z.iter().map(|&v| sigmoid(v)).collect(),
        })
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

pub fn encode(features: &[Feature], t: &Table) -> Result<Array2<f64>, ExecError> {
    let rows = t.rows();
    let width: usize = features.iter().map(Feature::width).sum();
    let mut x = Array2::<f64>::zeros((rows, width));
    let mut col = 0;
    let names = t.column_names();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for f in features {
        let i = t.column_index(f.name()).ok_or_else(|| {
            ExecError::failed(format!(
                "the model needs column `{}`, which the data does not have{}",
                f.name(),
                suggest(f.name(), &refs)
            ))
        })?;
        match f {
            Feature::Numeric { mean, std, .. } => {
                if !is_numeric(t.schema.field(i).data_type()) {
                    return Err(ExecError::failed(format!("the model needs column `{}` to be numeric", f.name())));
                }
                for (r, v) in t.f64_column(i).into_iter().enumerate() {
                    x[[r, col]] = (v.unwrap_or(*mean) - mean) / std;
                }
                col += 1;
            }
            Feature::Categorical { categories, .. } => {
                let index: std::collections::HashMap<&str, usize> =
                    categories.iter().enumerate().map(|(k, c)| (c.as_str(), k)).collect();
                for (r, v) in t.str_column(i).into_iter().enumerate() {
                    if let Some(k) = v.as_deref().and_then(|s| index.get(s)) {
                        x[[r, col + k]] = 1.0;
                    }
                }
                col += categories.len();
            }
        }
    }
    Ok(x)
}
