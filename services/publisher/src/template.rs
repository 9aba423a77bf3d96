//! The built-in `POST /ml/` template: the Full-Django prediction request of the contract
//! (docs/publisher.md), written out here rather than copied, without its example rows.

/// The 67 input columns of the pre-trained Full-Django model, in the template's order: the
/// original `ANTINEX_FEATURES_TO_PROCESS`, kept once in `netpipe_packet::schema::antinex`.
pub fn full_django_features() -> Vec<&'static str> {
    netpipe_packet::schema::antinex::ANTINEX_FEATURES_TO_PROCESS
        .split(',')
        .collect()
}

/// The default template as a JSON value.
pub fn default_template() -> serde_json::Value {
    serde_json::json!({
        "label": "Full-Django-AntiNex-Simple-Scaler-DNN",
        "predict_rows": [],
        "ml_type": "classification",
        "predict_feature": "label_value",
        "features_to_process": full_django_features(),
        "ignore_features": [],
        "sort_values": [],
        "seed": 42,
        "test_size": 0.2,
        "batch_size": 32,
        "epochs": 15,
        "num_splits": 2,
        "loss": "binary_crossentropy",
        "optimizer": "adam",
        "metrics": ["accuracy"],
        "histories": ["val_loss", "val_acc", "loss", "acc"],
        "model_desc": {
            "layers": [
                {"num_neurons": 200, "init": "uniform", "activation": "relu"},
                {"num_neurons": 1, "init": "uniform", "activation": "sigmoid"}
            ]
        },
        "label_rules": {
            "labels": ["not_attack", "not_attack", "attack"],
            "label_values": [-1, 0, 1]
        },
        "version": 1
    })
}
