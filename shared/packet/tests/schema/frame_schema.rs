//! docs/frame.schema.json describes the Frame document exactly: serialized frames (hand-built
//! with every layer, and decoded from the corpus pcaps) validate, broken ones do not, and the
//! schema's property tree equals the key tree serde emits for a frame with every field set.

use std::path::PathBuf;

/// A named way to break a valid frame document.
type Mutation = Box<dyn Fn(&mut Value)>;

use boon::{Compiler, Draft, SchemaIndex, Schemas};
use netpipe_testkit::samples;
use serde_json::{Value, json};

/// Packets validated per corpus file.
const PER_FILE: u64 = 3000;

const SCHEMA_URL: &str = "https://netpipe.invalid/schemas/frame-v1.json";

fn schema_json() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/frame.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn compiled() -> (Schemas, SchemaIndex) {
    let mut schemas = Schemas::new();
    let mut compiler = Compiler::new();
    compiler.set_default_draft(Draft::V2020_12);
    compiler.enable_format_assertions();
    compiler.add_resource(SCHEMA_URL, schema_json()).unwrap();
    let index = compiler.compile(SCHEMA_URL, &mut schemas).unwrap();
    (schemas, index)
}

fn all_samples() -> Vec<netpipe_packet::Frame> {
    let mut v = samples::typical();
    v.push(samples::every_field());
    v
}

#[test]
fn hand_built_frames_validate() {
    let (schemas, index) = compiled();
    for frame in all_samples() {
        let doc = serde_json::to_value(&frame).unwrap();
        if let Err(e) = schemas.validate(&doc, index) {
            panic!("frame seq {} does not validate: {e}\n{doc}", frame.seq);
        }
    }
}

#[test]
fn broken_documents_fail() {
    let (schemas, index) = compiled();
    let good = serde_json::to_value(samples::every_field()).unwrap();
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "missing seq",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("seq");
            }),
        ),
        ("seq as string", Box::new(|d| d["seq"] = json!("1"))),
        ("negative wire_len", Box::new(|d| d["wire_len"] = json!(-1))),
        ("unknown top-level key", Box::new(|d| d["extra"] = json!(1))),
        ("null layer", Box::new(|d| d["tcp"] = Value::Null)),
        (
            "unknown issue",
            Box::new(|d| d["errors"] = json!(["exploded"])),
        ),
        ("empty errors", Box::new(|d| d["errors"] = json!([]))),
        (
            "bad MAC",
            Box::new(|d| d["eth"]["src"] = json!("00:11:22:33:44")),
        ),
        (
            "bad IPv4",
            Box::new(|d| d["ipv4"]["src"] = json!("10.0.0.256")),
        ),
        (
            "bad IPv6",
            Box::new(|d| d["ipv6"]["dst"] = json!("fe80:::1")),
        ),
        (
            "port out of range",
            Box::new(|d| d["tcp"]["sport"] = json!(65536)),
        ),
        (
            "unknown TCP key",
            Box::new(|d| d["tcp"]["bogus"] = json!(0)),
        ),
        (
            "uppercase hex",
            Box::new(|d| d["payload"]["hex"] = json!("FF")),
        ),
        ("odd hex", Box::new(|d| d["payload"]["hex"] = json!("abc"))),
        (
            "SACK block of 3",
            Box::new(|d| d["tcp"]["opts"]["sack"] = json!([[1, 2, 3]])),
        ),
        (
            "VLAN id > 4095",
            Box::new(|d| d["vlan"][0]["id"] = json!(4096)),
        ),
        ("wrong version", Box::new(|d| d["v"] = json!(2))),
        (
            "missing udp.len",
            Box::new(|d| {
                d["udp"].as_object_mut().unwrap().remove("len");
            }),
        ),
        ("dns flag as int", Box::new(|d| d["dns"]["qr"] = json!(1))),
    ];
    for (what, mutate) in mutations {
        let mut doc = good.clone();
        mutate(&mut doc);
        assert!(
            schemas.validate(&doc, index).is_err(),
            "{what}: should not validate"
        );
    }
}

/// Key paths of an instance (`a.b`, arrays as `[]`).
fn instance_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push(p.clone());
                instance_paths(child, &p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                instance_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// Property paths the schema declares, following `$ref`s, `items` and `prefixItems`.
fn schema_paths(root: &Value, node: &Value, prefix: &str, out: &mut Vec<String>) {
    let node = resolve(root, node);
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, child) in props {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(p.clone());
            schema_paths(root, child, &p, out);
        }
    }
    if let Some(items) = node.get("items").filter(|i| i.is_object()) {
        schema_paths(root, items, &format!("{prefix}[]"), out);
    }
    if let Some(items) = node.get("prefixItems").and_then(Value::as_array) {
        for item in items {
            schema_paths(root, item, &format!("{prefix}[]"), out);
        }
    }
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap();
            resolve(
                root,
                root.pointer(pointer)
                    .unwrap_or_else(|| panic!("bad $ref {r}")),
            )
        }
        None => node,
    }
}

#[test]
fn schema_and_serde_declare_the_same_keys() {
    let doc = serde_json::to_value(samples::every_field()).unwrap();
    let mut emitted = Vec::new();
    instance_paths(&doc, "", &mut emitted);
    emitted.sort();
    emitted.dedup();
    let root = schema_json();
    let mut declared = Vec::new();
    schema_paths(&root, &root, "", &mut declared);
    declared.sort();
    declared.dedup();
    let not_in_schema: Vec<_> = emitted.iter().filter(|p| !declared.contains(p)).collect();
    let not_emitted: Vec<_> = declared.iter().filter(|p| !emitted.contains(p)).collect();
    assert!(
        not_in_schema.is_empty(),
        "serde emits keys the schema lacks: {not_in_schema:?}"
    );
    assert!(
        not_emitted.is_empty(),
        "schema declares keys samples::every_field() does not set: {not_emitted:?}"
    );
    assert!(emitted.len() > 100, "only {} key paths", emitted.len());
}

#[test]
fn decode_issue_enum_matches_the_code() {
    let root = schema_json();
    let listed: Vec<&str> = root["$defs"]["DecodeIssue"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ours: Vec<&str> = netpipe_packet::frame::DecodeIssue::ALL
        .iter()
        .map(|i| i.as_str())
        .collect();
    assert_eq!(listed, ours);
}

#[test]
fn corpus_frames_validate() {
    use netpipe_packet::decode::{DecodeOptions, FrameMeta, decode};
    use netpipe_runtime::capture::CaptureFile;
    let Some(data) = netpipe_testkit::paths::shared_data_or_skip("corpus_frames_validate") else {
        return;
    };
    let (schemas, index) = compiled();
    let meta = FrameMeta {
        agent: "corpus".into(),
        boot: 1,
        seq: 0,
    };
    let mut frames = 0usize;
    let mut entries: Vec<_> = std::fs::read_dir(data.join("pcaps"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap")
        })
        .collect();
    entries.sort();
    for path in entries {
        let Ok(mut file) = CaptureFile::open(&path) else {
            continue; // broken captures are the capture reader's test
        };
        let mut seq = 0u64;
        // Every file, at most PER_FILE packets each (a few large captures dominate the corpus).
        while seq < PER_FILE
            && let Ok(Some(packet)) = file.next_packet()
        {
            for options in [DecodeOptions::default(), DecodeOptions { payload_bytes: 0 }] {
                let frame = decode(
                    &packet,
                    &FrameMeta {
                        seq,
                        ..meta.clone()
                    },
                    &options,
                );
                let doc = serde_json::to_value(&frame).unwrap();
                if let Err(e) = schemas.validate(&doc, index) {
                    panic!("{} packet {seq}: {e}\n{doc}", path.display());
                }
                frames += 1;
            }
            seq += 1;
        }
    }
    assert!(frames > 100, "only {frames} corpus frames");
}
