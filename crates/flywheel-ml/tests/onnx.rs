//! scikit-learn models exported with skl2onnx give onnxruntime's labels
//! exactly and its probabilities and values within 1e-5 when Flywheel runs
//! them. Fixtures: `fixtures/onnx/make_onnx.py` (versions in `VERSIONS`).

use flywheel_ml::onnx::{DatumType, OnnxModel, Tensor};
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".onnx").map(String::from))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "fixtures missing: {names:?}");
    names
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)))
        .collect()
}

fn tensor_f64(t: &Tensor) -> Vec<f64> {
    let t = t.cast_to::<f64>().unwrap();
    t.to_plain_array_view::<f64>().unwrap().iter().copied().collect()
}

fn labels(t: &Tensor) -> Vec<String> {
    if t.datum_type() == DatumType::String {
        t.to_plain_array_view::<String>().unwrap().iter().cloned().collect()
    } else {
        t.cast_to::<i64>().unwrap().to_plain_array_view::<i64>().unwrap().iter().map(|v| v.to_string()).collect()
    }
}

fn close(name: &str, what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: {what} count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{name}: {what}[{i}] = {g}, onnxruntime {w}");
    }
}

#[test]
fn sklearn_exports_match_onnxruntime() {
    for name in cases() {
        let bytes = std::fs::read(dir().join(format!("{name}.onnx"))).unwrap();
        let want: Value = serde_json::from_slice(&std::fs::read(dir().join(format!("{name}.json"))).unwrap()).unwrap();
        let model = OnnxModel::load(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let rows = want["rows"].as_array().unwrap().len();
        let x: Vec<f32> = floats(&want["rows"]).into_iter().map(|v| v as f32).collect();
        let cols = x.len() / rows;
        let input = Tensor::from_shape(&[rows, cols], &x).unwrap();
        let out = model.run(vec![input]).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(values) = want.get("values") {
            close(&name, "value", &tensor_f64(&out[0]), &floats(values));
            continue;
        }
        let expected: Vec<String> =
            want["labels"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
        assert_eq!(labels(&out[0]), expected, "{name}: labels");
        close(&name, "probability", &tensor_f64(&out[1]), &floats(&want["probabilities"]));
        if let Some(classes) = want.get("classes") {
            let classes: Vec<String> = classes.as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
            assert_eq!(model.outputs()[1].classes.as_ref(), Some(&classes), "{name}: ZipMap classes");
        }
    }
}
