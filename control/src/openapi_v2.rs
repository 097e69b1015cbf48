//! `GET /openapi/v2`: a Swagger 2.0 document with no definitions. wisp publishes its schemas as
//! OpenAPI v3 (see [`crate::openapi`]), which kubectl uses for everything but one thing: it
//! validates the items of a `kind: List` file on the client, with the v2 document, skipping any
//! kind the document does not define. Without a v2 document at all, `kubectl apply -f list.yaml`
//! fails before sending anything; with this one, each item is sent and the server checks it,
//! as it checks every object.
//!
//! kubectl asks for the document as protobuf (gnostic's `openapi_v2.Document`); other clients
//! get JSON.

use serde_json::{Value, json};

const TITLE: &str = "wisp";
const VERSION: &str = "v2";

/// The document as JSON.
pub fn json() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": {},
        "definitions": {},
    })
}

/// The document as a protobuf `openapi.v2.Document`: `swagger` (field 1) and `info` (field 2,
/// an `Info` with `title` 1 and `version` 2); every other field left empty.
pub fn protobuf() -> Vec<u8> {
    let mut info = Vec::new();
    string_field(&mut info, 1, TITLE);
    string_field(&mut info, 2, VERSION);
    let mut document = Vec::new();
    string_field(&mut document, 1, "2.0");
    bytes_field(&mut document, 2, &info);
    document
}

/// Whether an `Accept` header asks for the protobuf form.
pub fn wants_protobuf(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| accept.contains("protobuf"))
}

fn string_field(out: &mut Vec<u8>, number: u8, text: &str) {
    bytes_field(out, number, text.as_bytes());
}

/// A length-delimited field (wire type 2); the lengths here are all short.
fn bytes_field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push((number << 3) | 2);
    varint(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protobuf_form_is_swagger_and_info() {
        assert_eq!(
            protobuf(),
            b"\x0a\x032.0\x12\x0a\x0a\x04wisp\x12\x02v2".to_vec()
        );
        assert_eq!(json()["swagger"], "2.0");
        assert!(wants_protobuf(Some(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        )));
        assert!(!wants_protobuf(Some("application/json")));
        assert!(!wants_protobuf(None));
    }

    #[test]
    fn long_fields_have_multi_byte_lengths() {
        let mut out = Vec::new();
        bytes_field(&mut out, 1, &[0; 300]);
        assert_eq!(&out[..3], &[0x0a, 0xac, 0x02]);
        assert_eq!(out.len(), 303);
    }
}
