//! The stand-in's jobs and results, shaped like `MLJob.get_public()` and
//! `MLJobResult.get_public()` of the real API.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub created: Instant,
    pub created_text: String,
    /// The request body without `predict_rows`.
    pub body: Map<String, Value>,
    /// The posted rows, when the stand-in keeps them.
    pub rows: Option<Vec<Value>>,
    pub row_count: usize,
    /// Each row's `idx` (drives the stand-in's deterministic prediction).
    pub row_idx: Vec<Option<f64>>,
    pub publish_to_core: bool,
    /// The idempotency key it was created under, if any.
    pub key: Option<String>,
}

fn text(body: &Map<String, Value>, key: &str, default: &str) -> Value {
    body.get(key)
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| Value::from(default))
}

impl Job {
    pub fn finished(&self, delay: Duration) -> bool {
        self.created.elapsed() >= delay
    }

    fn label(&self) -> Value {
        text(&self.body, "label", "")
    }

    pub fn predict_feature(&self) -> String {
        self.body
            .get("predict_feature")
            .and_then(Value::as_str)
            .unwrap_or("label_value")
            .to_string()
    }

    fn status(&self, finished: bool) -> &'static str {
        match (finished, self.publish_to_core) {
            (true, _) => "finished",
            (false, true) => "launched",
            (false, false) => "initial",
        }
    }

    pub fn job_json(&self, finished: bool, echo_rows: bool) -> Value {
        let b = &self.body;
        let label = self.label();
        let rows = match (&self.rows, echo_rows) {
            (Some(rows), true) => Value::Array(rows.clone()),
            _ => Value::Array(Vec::new()),
        };
        let mut manifest = json!({
            "job_id": self.id,
            "result_id": self.id,
            "ml_type": text(b, "ml_type", "classification"),
            "test_size": b.get("test_size").cloned().unwrap_or(json!(0.2)),
            "epochs": b.get("epochs").cloned().unwrap_or(json!(5)),
            "batch_size": b.get("batch_size").cloned().unwrap_or(json!(32)),
            "num_splits": b.get("num_splits").cloned().unwrap_or(json!(5)),
            "loss": text(b, "loss", "binary_crossentropy"),
            "metrics": b.get("metrics").cloned().unwrap_or(json!(["accuracy"])),
            "optimizer": text(b, "optimizer", "adam"),
            "histories": b.get("histories").cloned().unwrap_or(json!(["val_loss","val_acc","loss","acc"])),
            "seed": b.get("seed").cloned().unwrap_or(json!(9)),
            "training_data": {},
            "csv_file": b.get("csv_file").cloned().unwrap_or(Value::Null),
            "meta_file": b.get("meta_file").cloned().unwrap_or(Value::Null),
            "use_model_name": label,
            "dataset": b.get("dataset").cloned().unwrap_or(Value::Null),
            "predict_rows": rows,
            "apply_scaler": b.get("apply_scaler").cloned().unwrap_or(json!(true)),
            "predict_feature": self.predict_feature(),
            "features_to_process": b.get("features_to_process").cloned().unwrap_or(json!([])),
            "ignore_features": b.get("ignore_features").cloned().unwrap_or(json!([])),
            "sort_values": b.get("sort_values").cloned().unwrap_or(json!([])),
            "model_desc": b.get("model_desc").cloned().unwrap_or(Value::Null),
            "label_rules": b.get("label_rules").cloned().unwrap_or(Value::Null),
            "post_proc_rules": null,
            "model_weights_file": format!("/tmp/ml_weights_job_{}_result_{}.h5", self.id, self.id),
            "verbose": 1,
            "version": 1,
        });
        if self.publish_to_core
            && let Some(m) = manifest.as_object_mut()
        {
            m.insert("publish_to_core".into(), json!(true));
            m.insert("worker_result_node".into(), Value::Null);
        }
        let status = self.status(finished);
        json!({
            "id": self.id,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "title": text(b, "title", self.label().as_str().unwrap_or("")),
            "desc": b.get("desc").cloned().unwrap_or(Value::Null),
            "ds_name": text(b, "ds_name", self.label().as_str().unwrap_or("")),
            "algo_name": text(b, "algo_name", self.label().as_str().unwrap_or("")),
            "ml_type": text(b, "ml_type", "classification"),
            "status": status,
            "control_state": if finished { "finished" } else if self.publish_to_core { "launched" } else { "active" },
            "predict_feature": self.predict_feature(),
            "predict_manifest": manifest,
            "training_data": {},
            "pre_proc": {},
            "post_proc": {},
            "meta_data": {},
            "tracking_id": format!("ml_00000000-0000-4000-8000-{:012}", self.id),
            "version": 1,
            "created": self.created_text,
            "updated": self.created_text,
            "deleted": "",
        })
    }

    pub fn result_json(&self, finished: bool) -> Value {
        let status = self.status(finished);
        let (accuracy, model_json, weights, predictions) = if finished {
            (
                99.0,
                json!(
                    "{\"class_name\": \"Sequential\", \"config\": [], \"keras_version\": \"2.1.5\", \"backend\": \"tensorflow\"}"
                ),
                json!({}),
                json!({ "predictions": self.predictions() }),
            )
        } else {
            (-1.0, Value::Null, Value::Null, Value::Null)
        };
        json!({
            "id": self.id,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "job_id": self.id,
            "status": status,
            "test_size": self.body.get("test_size").cloned().unwrap_or(json!(0.2)),
            "csv_file": null,
            "meta_file": null,
            "version": 1,
            "acc_data": { "accuracy": accuracy },
            "error_data": null,
            "model_json": model_json,
            "model_weights": weights,
            "acc_image_file": null,
            "predictions_json": predictions,
            "created": self.created_text,
            "updated": self.created_text,
            "deleted": "",
        })
    }

    /// The stand-in's "model": class 1 ("attack") when the row's `idx` is odd, else 0.
    pub fn predicted_class(idx: Option<f64>) -> i64 {
        match idx {
            Some(v) if v.is_finite() => (v as i64).rem_euclid(2),
            _ => 0,
        }
    }

    fn label_name(&self, class: i64) -> String {
        let rules = self.body.get("label_rules");
        let values = rules
            .and_then(|r| r.get("label_values"))
            .and_then(Value::as_array);
        let labels = rules
            .and_then(|r| r.get("labels"))
            .and_then(Value::as_array);
        values
            .and_then(|vs| vs.iter().position(|v| v.as_i64() == Some(class)))
            .and_then(|i| labels.and_then(|ls| ls.get(i)))
            .and_then(Value::as_str)
            .unwrap_or(if class == 1 { "attack" } else { "not_attack" })
            .to_string()
    }

    /// Prediction rows as antinex-utils builds them (features, predicted class as int,
    /// `_original_<feature>`, `label_name`, `_row_idx`, `_count`).
    pub fn predictions(&self) -> Vec<Value> {
        let feature = self.predict_feature();
        (0..self.row_count)
            .map(|i| {
                let idx = self.row_idx.get(i).copied().flatten();
                let class = Self::predicted_class(idx);
                let mut p = match self.rows.as_ref().and_then(|r| r.get(i)) {
                    Some(Value::Object(row)) => row.clone(),
                    _ => Map::new(),
                };
                let original = p
                    .remove(&feature)
                    .unwrap_or_else(|| json!("missing-from-dataset"));
                p.insert(feature.clone(), json!(class));
                p.insert(format!("_original_{feature}"), original);
                p.insert("label_name".into(), json!(self.label_name(class)));
                p.insert("_row_idx".into(), json!(i));
                p.insert("_count".into(), json!(i));
                Value::Object(p)
            })
            .collect()
    }
}
