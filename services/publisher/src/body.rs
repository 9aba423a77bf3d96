//! `POST /ml/` bodies: the template with the `ANTINEX_*` overrides applied once at start-up,
//! then per batch only the `predict_rows` array is written, straight into bytes.

use std::path::Path;

use serde_json::{Map, Value};

use crate::config::{Config, split_list};
use crate::error::PublisherError;
use crate::template::default_template;

/// How cells become JSON values (`ANTINEX_CONVERT_DATA`, `ANTINEX_CONVERT_DATA_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convert {
    Float,
    Int,
    /// Cells are sent as JSON strings, as read.
    Off,
}

/// The fixed part of every body plus the rules for writing one row.
#[derive(Debug, Clone)]
pub struct BodyBuilder {
    /// `{"predict_rows":[`
    prefix: Vec<u8>,
    /// `],"label":…}`: every other template key, overrides applied.
    suffix: Vec<u8>,
    /// Features sent per row, in order (filtered: no predict feature, no ignored feature).
    features: Vec<String>,
    /// `"name":` per feature, escaped once.
    feature_keys: Vec<Vec<u8>>,
    /// `"label_value":-1.0` when every row must carry the predict column.
    predict_cell: Option<Vec<u8>>,
    /// The missing value as JSON number text.
    missing: Vec<u8>,
    convert: Convert,
    include_failed: bool,
    model_name: String,
}

impl BodyBuilder {
    pub fn from_config(config: &Config) -> Result<Self, PublisherError> {
        let template = match &config.request_file {
            Some(path) => load_template(path)?,
            None => default_template(),
        };
        Self::new(config, template)
    }

    pub fn new(config: &Config, template: Value) -> Result<Self, PublisherError> {
        let Value::Object(mut body) = template else {
            return Err(PublisherError::Config(
                "the request template must be a JSON object".into(),
            ));
        };
        body.remove("predict_rows");

        let requested = split_list(&config.features_to_process);
        let listed = if requested.is_empty() {
            // The original sent rows of nothing but the predict column here; the template's
            // list is what the model expects, so use it.
            template_strings(&body, "features_to_process")
        } else {
            requested
        };
        let ignored = split_list(&config.ignore_features);
        let mut features: Vec<String> = Vec::with_capacity(listed.len());
        for name in listed {
            if name != config.predict_feature
                && !ignored.contains(&name)
                && !features.contains(&name)
            {
                features.push(name);
            }
        }
        if features.is_empty() {
            return Err(PublisherError::Config(
                "no features to send: set ANTINEX_FEATURES_TO_PROCESS or use a template with features_to_process".into(),
            ));
        }

        let missing_number: f64 = config.missing_value.trim().parse().map_err(|_| {
            PublisherError::Config(format!(
                "ANTINEX_MISSING_VALUE must be a number, got {:?}",
                config.missing_value
            ))
        })?;
        if !missing_number.is_finite() {
            return Err(PublisherError::Config(
                "ANTINEX_MISSING_VALUE must be finite (JSON has no NaN)".into(),
            ));
        }
        let convert = match (
            config.convert_data,
            config
                .convert_data_type
                .trim()
                .to_ascii_lowercase()
                .as_str(),
        ) {
            (false, _) => Convert::Off,
            (true, "float") => Convert::Float,
            (true, "int") => Convert::Int,
            (true, other) => {
                return Err(PublisherError::Config(format!(
                    "ANTINEX_CONVERT_DATA_TYPE must be float or int, got {other:?}"
                )));
            }
        };

        body.insert("label".into(), config.model_name.clone().into());
        body.insert("ml_type".into(), config.ml_type.clone().into());
        body.insert(
            "predict_feature".into(),
            config.predict_feature.clone().into(),
        );
        body.insert("publish_to_core".into(), config.publish_to_core.into());
        body.insert("seed".into(), config.seed.into());
        body.insert("test_size".into(), config.test_size.into());
        body.insert("batch_size".into(), config.batch_size.into());
        body.insert("epochs".into(), config.epochs.into());
        body.insert("num_splits".into(), config.num_splits.into());
        body.insert("loss".into(), config.loss.clone().into());
        body.insert("optimizer".into(), config.optimizer.clone().into());
        if config.metrics.is_some() {
            body.insert("metrics".into(), split_list(&config.metrics).into());
        }
        if config.histories.is_some() {
            body.insert("histories".into(), split_list(&config.histories).into());
        }
        body.insert("features_to_process".into(), features.clone().into());
        if !ignored.is_empty() {
            body.insert("ignore_features".into(), ignored.into());
        }
        let sort_values = split_list(&config.sort_values);
        if !sort_values.is_empty() {
            body.insert("sort_values".into(), sort_values.into());
        }
        if let Some(version) = config.version {
            body.insert("version".into(), version.into());
        }

        let rest = serde_json::to_vec(&Value::Object(body))
            .map_err(|e| PublisherError::Config(format!("template: {e}")))?;
        // `rest` is `{…}`; keep everything after its opening brace.
        let mut suffix = b"]".to_vec();
        match rest.get(1..) {
            Some(b"}") | None => suffix.push(b'}'),
            Some(tail) => {
                suffix.push(b',');
                suffix.extend_from_slice(tail);
            }
        }

        let missing = json_number(missing_number);
        let predict_cell = config.check_missing_predict.then(|| {
            let mut cell = json_key(&config.predict_feature);
            cell.extend_from_slice(&missing);
            cell
        });
        Ok(BodyBuilder {
            prefix: b"{\"predict_rows\":[".to_vec(),
            suffix,
            feature_keys: features.iter().map(|f| json_key(f)).collect(),
            features,
            predict_cell,
            missing,
            convert,
            include_failed: config.include_failed_conversions,
            model_name: config.model_name.clone(),
        })
    }

    pub fn features(&self) -> &[String] {
        &self.features
    }

    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// For each feature, the index of its column in a batch with these columns.
    pub fn column_map<S: AsRef<str>>(&self, columns: &[S]) -> Vec<Option<usize>> {
        self.features
            .iter()
            .map(|f| columns.iter().position(|c| c.as_ref() == f))
            .collect()
    }

    /// Appends one row object to `out`. Absent or empty cells, and cells that do not convert
    /// (unless `ANTINEX_INCLUDE_FAILED_CONVERSIONS`), become the missing value as a number.
    /// A real zero stays zero. Returns the number of cells that failed to convert.
    pub fn write_row<S: AsRef<str>>(
        &self,
        map: &[Option<usize>],
        cells: &[S],
        out: &mut Vec<u8>,
    ) -> usize {
        let mut failed = 0;
        out.push(b'{');
        for (i, (key, column)) in self.feature_keys.iter().zip(map).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            let cell = column
                .and_then(|c| cells.get(c))
                .map(|c| c.as_ref().trim())
                .unwrap_or("");
            if cell.is_empty() {
                out.extend_from_slice(&self.missing);
                continue;
            }
            let converted =
                match self.convert {
                    Convert::Float => cell.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| {
                        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes())
                    }),
                    Convert::Int => cell
                        .parse::<i64>()
                        .ok()
                        .map(|v| out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes())),
                    Convert::Off => {
                        write_json_string(cell, out);
                        Some(())
                    }
                };
            if converted.is_none() {
                failed += 1;
                if self.include_failed {
                    write_json_string(cell, out);
                } else {
                    out.extend_from_slice(&self.missing);
                }
            }
        }
        if let Some(predict) = &self.predict_cell {
            if !self.feature_keys.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(predict);
        }
        out.push(b'}');
        failed
    }

    /// A whole body around rows already written by [`write_row`](Self::write_row), comma-separated.
    pub fn body(&self, rows: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.prefix.len() + rows.len() + self.suffix.len());
        body.extend_from_slice(&self.prefix);
        body.extend_from_slice(rows);
        body.extend_from_slice(&self.suffix);
        body
    }
}

fn load_template(path: &Path) -> Result<Value, PublisherError> {
    let err = |reason: String| PublisherError::Template {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| err(e.to_string()))
}

fn template_strings(body: &Map<String, Value>, key: &str) -> Vec<String> {
    body.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn json_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 3);
    write_json_string(name, &mut key);
    key.push(b':');
    key
}

fn write_json_string(s: &str, out: &mut Vec<u8>) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn json_number(v: f64) -> Vec<u8> {
    ryu::Buffer::new().format_finite(v).as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(features: &str) -> Config {
        let mut c = Config::for_tests("memory://x", "http://127.0.0.1:1");
        c.features_to_process = Some(features.into());
        c
    }

    fn encode(builder: &BodyBuilder, columns: &[&str], cells: &[&str]) -> Value {
        let columns: Vec<String> = columns.iter().map(|s| s.to_string()).collect();
        let cells: Vec<String> = cells.iter().map(|s| s.to_string()).collect();
        let mut rows = Vec::new();
        builder.write_row(&builder.column_map(&columns), &cells, &mut rows);
        serde_json::from_slice(&builder.body(&rows)).unwrap()
    }

    #[test]
    fn rows_keep_zero_fill_missing_and_drop_the_label() {
        let b = BodyBuilder::new(
            &config("idx,ip_tos,ip_len,tcp_dport,label_value"),
            default_template(),
        )
        .unwrap();
        let body = encode(
            &b,
            &[
                "idx",
                "ip_tos",
                "ip_len",
                "eth_src",
                "label_value",
                "tcp_dport",
            ],
            &["7", "0", "", "aa:bb", "1", "x80"],
        );
        let row = &body["predict_rows"][0];
        assert_eq!(row["idx"], 7.0);
        assert_eq!(row["ip_tos"], 0.0, "a real zero stays zero");
        assert_eq!(
            row["ip_len"], -1.0,
            "empty cell is the missing value, as a number"
        );
        assert_eq!(
            row["tcp_dport"], -1.0,
            "unconvertible cell is the missing value"
        );
        assert_eq!(row["label_value"], -1.0, "the row's own label is not sent");
        assert!(row.get("eth_src").is_none());
        assert_eq!(row.as_object().unwrap().len(), 5);
        assert_eq!(
            body["features_to_process"],
            serde_json::json!(["idx", "ip_tos", "ip_len", "tcp_dport"])
        );
        assert_eq!(body["label"], "Full-Django-AntiNex-Simple-Scaler-DNN");
        assert_eq!(body["publish_to_core"], true);
        assert_eq!(body["num_splits"], 3);
        assert_eq!(
            body["metrics"],
            serde_json::json!(["accuracy"]),
            "template kept when unset"
        );
    }

    #[test]
    fn include_failed_and_int_conversion() {
        let mut c = config("a,b");
        c.include_failed_conversions = true;
        c.convert_data_type = "int".into();
        c.check_missing_predict = false;
        let b = BodyBuilder::new(&c, default_template()).unwrap();
        let body = encode(&b, &["a", "b"], &["12", "1.5"]);
        assert_eq!(
            body["predict_rows"][0],
            serde_json::json!({"a": 12, "b": "1.5"})
        );
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let mut c = config("a");
        c.missing_value = "nan".into();
        assert!(BodyBuilder::new(&c, default_template()).is_err());
        let c = config("label_value");
        assert!(
            BodyBuilder::new(&c, default_template()).is_err(),
            "only the predict feature"
        );
        assert!(BodyBuilder::new(&config("a"), serde_json::json!([1])).is_err());
    }

    #[test]
    fn template_features_are_used_when_the_env_list_is_unset() {
        let c = Config::for_tests("memory://x", "http://127.0.0.1:1");
        let b = BodyBuilder::new(&c, default_template()).unwrap();
        assert_eq!(b.features().len(), 67);
        let body: Value = serde_json::from_slice(&b.body(b"")).unwrap();
        assert_eq!(body["predict_rows"], serde_json::json!([]));
    }
}
