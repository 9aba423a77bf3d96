//! The envelope kombu's Redis transport puts on a list (original.md §2.5):
//!
//! ```json
//! {"body": "<base64 of the JSON body>", "content-encoding": "utf-8",
//!  "content-type": "application/json", "headers": {},
//!  "properties": {"delivery_mode": 2, "priority": 0,
//!                 "delivery_info": {"exchange": "NEW_PACKETS", "routing_key": "NEW_PACKETS"},
//!                 "body_encoding": "base64", "delivery_tag": "<uuid4>"}}
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::{Map, Value};

/// Separator kombu puts between the parts of a `_kombu.binding.*` set member.
pub const KOMBU_BINDING_SEPARATOR: &str = "\x06\x16";

/// A decoded list element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KombuMessage {
    /// The inner body (base64-decoded when `body_encoding` says so).
    pub body: Vec<u8>,
    /// `properties.delivery_tag`; empty when the producer left it out.
    pub delivery_tag: String,
    pub content_type: String,
    /// `headers`, as sent (dead letters carry their reason here).
    pub headers: Map<String, Value>,
}

/// Why a list element is not a kombu message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KombuEnvelopeError {
    #[error("list element is not JSON: {0}")]
    NotJson(String),
    #[error("list element is not a kombu envelope: {0}")]
    NotAnEnvelope(&'static str),
    #[error("kombu body is not valid base64: {0}")]
    BadBase64(String),
}

#[derive(Serialize)]
struct Envelope<'a> {
    body: String,
    #[serde(rename = "content-encoding")]
    content_encoding: &'a str,
    #[serde(rename = "content-type")]
    content_type: &'a str,
    headers: &'a Map<String, Value>,
    properties: Properties<'a>,
}

#[derive(Serialize)]
struct Properties<'a> {
    delivery_mode: u8,
    priority: u8,
    delivery_info: DeliveryInfo<'a>,
    body_encoding: &'a str,
    delivery_tag: &'a str,
}

#[derive(Serialize)]
struct DeliveryInfo<'a> {
    exchange: &'a str,
    routing_key: &'a str,
}

/// The list element kombu would `LPUSH` for `body` (persistent, priority 0, JSON content).
pub fn encode_kombu_envelope(
    body: &[u8],
    exchange: &str,
    routing_key: &str,
    delivery_tag: &str,
) -> Vec<u8> {
    encode_with_headers(body, exchange, routing_key, delivery_tag, &Map::new())
}

pub(crate) fn encode_with_headers(
    body: &[u8],
    exchange: &str,
    routing_key: &str,
    delivery_tag: &str,
    headers: &Map<String, Value>,
) -> Vec<u8> {
    let envelope = Envelope {
        body: BASE64.encode(body),
        content_encoding: "utf-8",
        content_type: "application/json",
        headers,
        properties: Properties {
            delivery_mode: 2,
            priority: 0,
            delivery_info: DeliveryInfo {
                exchange,
                routing_key,
            },
            body_encoding: "base64",
            delivery_tag,
        },
    };
    // Serializing strings and maps cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Decodes a list element. Accepts what kombu producers write (base64 body) and a plain
/// string body when `body_encoding` is absent.
pub fn decode_kombu_envelope(element: &[u8]) -> Result<KombuMessage, KombuEnvelopeError> {
    let value: Value =
        serde_json::from_slice(element).map_err(|e| KombuEnvelopeError::NotJson(e.to_string()))?;
    let Value::Object(mut envelope) = value else {
        return Err(KombuEnvelopeError::NotAnEnvelope("not a JSON object"));
    };
    let Some(Value::String(body)) = envelope.remove("body") else {
        return Err(KombuEnvelopeError::NotAnEnvelope("no string \"body\""));
    };
    let properties = match envelope.remove("properties") {
        Some(Value::Object(p)) => p,
        None => Map::new(),
        Some(_) => {
            return Err(KombuEnvelopeError::NotAnEnvelope(
                "\"properties\" is not an object",
            ));
        }
    };
    let text = |map: &Map<String, Value>, key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let body = match properties.get("body_encoding").and_then(Value::as_str) {
        Some("base64") => BASE64
            .decode(body.trim())
            .map_err(|e| KombuEnvelopeError::BadBase64(e.to_string()))?,
        _ => body.into_bytes(),
    };
    let headers = match envelope.remove("headers") {
        Some(Value::Object(h)) => h,
        _ => Map::new(),
    };
    Ok(KombuMessage {
        body,
        delivery_tag: text(&properties, "delivery_tag"),
        content_type: text(&envelope, "content-type"),
        headers,
    })
}

/// A random (version 4) UUID, as kombu uses for delivery tags.
pub fn new_delivery_tag() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The `_kombu.binding.<exchange>` member a kombu topic producer adds:
/// `routing_key SEP ^escaped(routing_key)$ SEP queue`.
pub fn kombu_binding_member(routing_key: &str, queue: &str) -> String {
    let mut pattern = String::from("^");
    for c in routing_key.chars() {
        // Python's re.escape leaves letters, digits and '_' alone.
        if !(c.is_ascii_alphanumeric() || c == '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('$');
    [routing_key, pattern.as_str(), queue].join(KOMBU_BINDING_SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_matches_the_original_byte_for_byte() {
        let body = br#"{"data": {"ether": {"type": 2048}}, "created": "2018-01-28 22:58:16", "source": "localdev"}"#;
        let element = encode_kombu_envelope(
            body,
            "NEW_PACKETS",
            "NEW_PACKETS",
            "1b9f5e7c-7c1f-4a53-9b43-1c0f5c0e1a2b",
        );
        let expected = format!(
            concat!(
                r#"{{"body":"{}","content-encoding":"utf-8","content-type":"application/json","headers":{{}},"#,
                r#""properties":{{"delivery_mode":2,"priority":0,"delivery_info":{{"exchange":"NEW_PACKETS","routing_key":"NEW_PACKETS"}},"#,
                r#""body_encoding":"base64","delivery_tag":"1b9f5e7c-7c1f-4a53-9b43-1c0f5c0e1a2b"}}}}"#
            ),
            BASE64.encode(body)
        );
        assert_eq!(String::from_utf8(element.clone()).unwrap(), expected);
        let decoded = decode_kombu_envelope(&element).unwrap();
        assert_eq!(decoded.body, body);
        assert_eq!(decoded.delivery_tag, "1b9f5e7c-7c1f-4a53-9b43-1c0f5c0e1a2b");
        assert_eq!(decoded.content_type, "application/json");
    }

    #[test]
    fn python_formatted_envelopes_decode() {
        // kombu (json.dumps) writes spaces after separators.
        let element = br#"{"body": "eyJhIjogMX0=", "content-encoding": "utf-8", "content-type": "application/json", "headers": {}, "properties": {"delivery_mode": 2, "priority": 0, "delivery_info": {"exchange": "NEW_PACKETS", "routing_key": "NEW_PACKETS"}, "body_encoding": "base64", "delivery_tag": "t-1"}}"#;
        let decoded = decode_kombu_envelope(element).unwrap();
        assert_eq!(decoded.body, br#"{"a": 1}"#);
        assert_eq!(decoded.delivery_tag, "t-1");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(matches!(
            decode_kombu_envelope(b"hello"),
            Err(KombuEnvelopeError::NotJson(_))
        ));
        assert!(matches!(
            decode_kombu_envelope(b"[1,2]"),
            Err(KombuEnvelopeError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            decode_kombu_envelope(br#"{"body": 5}"#),
            Err(KombuEnvelopeError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            decode_kombu_envelope(br#"{"body": "!!", "properties": {"body_encoding": "base64"}}"#),
            Err(KombuEnvelopeError::BadBase64(_))
        ));
    }

    #[test]
    fn tags_are_uuid4_and_bindings_match_kombu() {
        let tag = new_delivery_tag();
        assert_eq!(tag.len(), 36);
        assert_eq!(tag.as_bytes()[14], b'4');
        assert_ne!(tag, new_delivery_tag());
        assert_eq!(
            kombu_binding_member("NEW_PACKETS", "NEW_PACKETS"),
            "NEW_PACKETS\x06\x16^NEW_PACKETS$\x06\x16NEW_PACKETS"
        );
        assert_eq!(
            kombu_binding_member("a.b", "q"),
            "a.b\x06\x16^a\\.b$\x06\x16q"
        );
    }
}
