//! Just enough OpenAPI v3 for kubectl: the index of group versions, and per group
//! version one PATCH operation per kind that names its group, version and kind and
//! declares the `fieldValidation` query parameter. kubectl reads exactly that to
//! decide that the server validates fields itself, and then sends
//! `fieldValidation=Strict` instead of downloading schemas.

use crate::kinds::Kind;
use serde_json::{json, Map, Value};

fn gv_path(k: &Kind) -> String {
    if k.group.is_empty() {
        format!("api/{}", k.version)
    } else {
        format!("apis/{}/{}", k.group, k.version)
    }
}

/// `GET /openapi/v3`: where each group version's document is.
pub fn index(kinds: &[Kind]) -> Value {
    let mut paths = Map::new();
    for k in kinds {
        let p = gv_path(k);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}")}),
        );
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/{api/v1 | apis/group/version}`, if served.
pub fn group_version(kinds: &[Kind], path: &str) -> Option<Value> {
    let mut paths = Map::new();
    for k in kinds.iter().filter(|k| gv_path(k) == path) {
        let prefix = if k.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}/{{name}}",
                gv_path(k),
                k.plural
            )
        } else {
            format!("/{}/{}/{{name}}", gv_path(k), k.plural)
        };
        paths.insert(
            prefix,
            json!({"patch": {
                "operationId": format!("patch{}", k.kind),
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": k.group, "version": k.version, "kind": k.kind},
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
                ],
                "responses": {"200": {"description": "OK"}}
            }}),
        );
    }
    (!paths.is_empty()).then(|| {
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
               "paths": paths, "components": {"schemas": {}}})
    })
}

/// `GET /openapi/v2`: an OpenAPI v2 document without paths or definitions. kubectl
/// before 1.27 (Debian's 1.20) fetches it before `apply` and validation; without
/// schemas it falls back to the types compiled into it, as it does for unknown
/// kinds. Served as protobuf (gnostic's `openapi_v2.Document`, the form client-go
/// asks for) or JSON.
pub fn v2(protobuf: bool) -> (Vec<u8>, &'static str) {
    const TITLE: &str = "Kubernetes";
    const VERSION: &str = "v1.32.0";
    if !protobuf {
        let doc = json!({"swagger": "2.0", "info": {"title": TITLE, "version": VERSION},
                         "paths": {}, "definitions": {}});
        return (doc.to_string().into_bytes(), "application/json");
    }
    // Document { swagger = 1; info = 2 }, Info { title = 1; version = 2 }.
    let field = |number: u8, bytes: &[u8]| {
        let mut out = vec![(number << 3) | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    };
    let info = [field(1, TITLE.as_bytes()), field(2, VERSION.as_bytes())].concat();
    let doc = [field(1, b"2.0"), field(2, &info)].concat();
    (
        doc,
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v2_document_is_a_swagger_2_document_in_both_encodings() {
        let (json, kind) = v2(false);
        assert_eq!(kind, "application/json");
        let doc: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(doc["swagger"], "2.0");
        let (pb, _) = v2(true);
        // swagger (field 1, "2.0") then info (field 2) holding title and version.
        assert_eq!(&pb[..5], b"\x0a\x032.0");
        assert_eq!(pb[5], 0x12);
        assert_eq!(pb[6] as usize, pb.len() - 7);
        assert_eq!(&pb[7..9], b"\x0a\x0a");
        assert_eq!(&pb[9..19], b"Kubernetes");
    }
}
