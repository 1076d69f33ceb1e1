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
