//! Served answers against the in-process prediction of the same rows:
//! numbers bit for bit (NaN equal to NaN, which JSON writes as `null`),
//! class labels equal. The first mismatches are kept to be named.

use flywheel_client::Answer;
use flywheel_ml::Prediction;
use serde_json::{Value as Json, json};

/// How many mismatches are named in the blessing and the error.
pub const SHOWN: usize = 5;

/// Mismatches of every batch of one endpoint.
#[derive(Debug, Default)]
pub struct Mismatches {
    pub count: usize,
    pub first: Vec<Json>,
}

impl Mismatches {
    fn push(&mut self, endpoint: &str, row: usize, output: &str, expected: Json, got: Json) {
        self.count += 1;
        if self.first.len() < SHOWN {
            self.first
                .push(json!({ "endpoint": endpoint, "row": row, "output": output, "expected": expected, "got": got }));
        }
    }
}

/// The same number, bit for bit; `null` stands for NaN.
fn same_number(expected: f64, got: &Json) -> bool {
    match got.as_f64() {
        Some(g) => g.to_bits() == expected.to_bits(),
        None => got.is_null() && expected.is_nan(),
    }
}

fn shown(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or(json!("NaN"), Json::Number)
}

/// Compares `answer` for rows `start..start + n` with `expected`.
pub fn compare(
    expected: &Prediction,
    classes: &[String],
    answer: &Answer,
    start: usize,
    endpoint: &str,
    out: &mut Mismatches,
) -> Result<(), String> {
    let n = answer.values.len();
    match expected {
        Prediction::Values(v) => {
            for (i, got) in answer.values.iter().enumerate() {
                let want = v[start + i];
                if !same_number(want, got) {
                    out.push(endpoint, start + i, "prediction", shown(want), got.clone());
                }
            }
        }
        Prediction::Classes { probabilities, labels } => {
            for (i, got) in answer.values.iter().enumerate() {
                let want = &classes[labels[start + i]];
                if got.as_str() != Some(want.as_str()) {
                    out.push(endpoint, start + i, "prediction", json!(want), got.clone());
                }
            }
            if let Some(p) = &answer.probabilities {
                let k = probabilities.cols;
                if p.len() != n * k {
                    return Err(format!("{endpoint} answered {} probabilities for {n} rows of {k} classes", p.len()));
                }
                for (j, got) in p.iter().enumerate() {
                    let (row, class) = (start + j / k, j % k);
                    let want = probabilities.data[row * k + class];
                    if !same_number(want, got) {
                        let output = format!("probability({})", classes[class]);
                        out.push(endpoint, row, &output, shown(want), got.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_must_be_equal_bit_for_bit_and_labels_equal() {
        let expected = Prediction::Values(vec![0.1, f64::NAN, 2.0]);
        let next = f64::from_bits(0.1f64.to_bits() + 1);
        let answer = Answer { values: vec![json!(next), json!(null), json!(2.0)], probabilities: None };
        let mut m = Mismatches::default();
        compare(&expected, &[], &answer, 0, "/invocations", &mut m).unwrap();
        assert_eq!(m.count, 1);
        assert_eq!(m.first[0]["row"], 0);
        assert_eq!(m.first[0]["expected"], json!(0.1));

        let classes = vec!["no".to_string(), "yes".to_string()];
        let probabilities = flywheel_ml::Matrix { rows: 2, cols: 2, data: vec![0.9, 0.1, 0.3, 0.7] };
        let expected = Prediction::Classes { probabilities, labels: vec![0, 1] };
        let answer = Answer {
            values: vec![json!("no"), json!("no")],
            probabilities: Some(vec![json!(0.9), json!(0.1), json!(0.3), json!(0.7)]),
        };
        let mut m = Mismatches::default();
        compare(&expected, &classes, &answer, 0, "infer", &mut m).unwrap();
        assert_eq!((m.count, m.first[0]["row"].clone(), m.first[0]["got"].clone()), (1, json!(1), json!("no")));
    }
}
