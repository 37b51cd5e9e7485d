//! scikit-learn models exported with skl2onnx give onnxruntime's labels
//! exactly and its probabilities and values within 1e-5 when Flywheel runs
//! them. Fixtures: `fixtures/onnx/make_onnx.py` (versions in `VERSIONS`).

use flywheel_ml::model::onnx_estimator::{OnnxSignature, import};
use flywheel_ml::onnx::{DatumType, OnnxModel, Tensor};
use flywheel_ml::{Model, Prediction, Task};
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

fn frame(want: &Value) -> flywheel_ml::Frame {
    let rows = want["rows"].as_array().unwrap();
    let mut f = flywheel_ml::Frame::new();
    for (j, c) in want["columns"].as_array().unwrap().iter().enumerate() {
        let v = rows.iter().map(|r| r[j].as_f64().unwrap_or(f64::NAN)).collect();
        f.push(c.as_str().unwrap(), flywheel_ml::Column::Num(v)).unwrap();
    }
    f
}

fn signature(want: &Value, target: &str) -> OnnxSignature {
    let inputs = want["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    OnnxSignature { inputs: Some(inputs), target: target.into(), task: None }
}

fn fixture(name: &str) -> (Vec<u8>, Value) {
    let bytes = std::fs::read(dir().join(format!("{name}.onnx"))).unwrap();
    let want = serde_json::from_slice(&std::fs::read(dir().join(format!("{name}.json"))).unwrap()).unwrap();
    (bytes, want)
}

#[test]
fn imported_models_predict_from_columns_and_survive_a_round_trip() {
    for (name, target) in
        [("boosting_binary", "income"), ("mlp_multiclass", "weathersit"), ("forest_regression", "cnt")]
    {
        let (bytes, want) = fixture(name);
        let model = import(bytes, Some(signature(&want, target)), name).unwrap();
        let back = Model::from_json(&model.to_json()).unwrap();
        assert_eq!(back, model);
        let f = frame(&want);
        let pred = back.predict_parallel(&f, 2).unwrap();
        match pred {
            Prediction::Values(v) => {
                assert_eq!(model.task, Task::Regression);
                close(name, "value", &v, &floats(&want["values"]));
            }
            Prediction::Classes { probabilities, labels } => {
                let got: Vec<&str> = labels.iter().map(|&l| model.classes[l].as_str()).collect();
                let expected: Vec<&str> =
                    want["labels"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
                assert_eq!(got, expected, "{name}");
                close(name, "probability", &probabilities.data, &floats(&want["probabilities"]));
            }
        }
    }
}

#[test]
fn bad_onnx_files_and_signatures_are_refused_with_a_reason() {
    let (bytes, want) = fixture("forest_binary");
    let err = |b: Vec<u8>, s: Option<OnnxSignature>| import(b, s, "m.onnx").unwrap_err().to_string();
    let sig = signature(&want, "income");
    let e = err(b"\x80\x04\x95pickle".to_vec(), Some(sig.clone()));
    assert!(e.contains("m.onnx") && e.contains("ONNX"), "{e}");
    let e = err(br#"{"format": "flywheel.model/2"}"#.to_vec(), Some(sig.clone()));
    assert!(e.contains("ONNX"), "{e}");
    let e = err(bytes[..bytes.len() / 2].to_vec(), Some(sig.clone()));
    assert!(e.contains("ONNX"), "truncated: {e}");
    let mut short = sig.clone();
    short.inputs.as_mut().unwrap().pop();
    let e = err(bytes.clone(), Some(short));
    assert!(e.contains("takes 6 columns but the signature names 5"), "{e}");
    let e = err(bytes.clone(), None);
    assert!(e.contains("--signature"), "{e}");
    let mut twice = sig.clone();
    twice.inputs.as_mut().unwrap()[1] = "age".into();
    assert!(err(bytes.clone(), Some(twice)).contains("listed twice"));
    let e = err(bytes.clone(), Some(OnnxSignature { target: " ".into(), ..sig.clone() }));
    assert!(e.contains("target"), "{e}");
    let e = OnnxSignature::from_json(br#"{"inputs": ["a"], "taget": "y"}"#, "sig.json").unwrap_err().to_string();
    assert!(e.contains("sig.json") && e.contains("taget"), "{e}");
    // A model whose data lacks a column says which.
    let model = import(bytes, Some(sig), "m.onnx").unwrap();
    let mut f = flywheel_ml::Frame::new();
    f.push("age", flywheel_ml::Column::Num(vec![30.0])).unwrap();
    let e = model.predict(&f).unwrap_err().to_string();
    assert!(e.contains("no column `fnlwgt`"), "{e}");
}
