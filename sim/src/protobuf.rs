//! Kubernetes' protobuf encoding, decoded to the JSON the rest of the simulator
//! works with. kubectl's typed commands (`create deployment`, `create namespace`,
//! `create configmap`, ...) send `application/vnd.kubernetes.protobuf` bodies: the
//! magic `k8s\0`, then a `runtime.Unknown` envelope holding the type and the
//! object's bytes. Field numbers, names and types come from
//! `schema/k8s-protobuf.schema` (generated from k8s.io/api's `.proto` files by
//! `schema/generate.py`); fields not in it are skipped.

use crate::status::ApiError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::LazyLock;

const MAGIC: &[u8] = b"k8s\0";

/// Go's zero `time.Time` as Unix seconds: a `Time` holding it is null in JSON.
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

#[derive(Debug)]
struct Field {
    name: String,
    /// `o` optional, `r` repeated, `m` map.
    label: char,
    ty: String,
    value_ty: String,
}

type Schema = HashMap<String, HashMap<u64, Field>>;

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let mut schema: Schema = HashMap::new();
    for line in include_str!("../schema/k8s-protobuf.schema").lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 5 {
            continue;
        }
        let Ok(number) = cols[1].parse() else {
            continue;
        };
        schema.entry(cols[0].to_string()).or_default().insert(
            number,
            Field {
                name: cols[2].to_string(),
                label: cols[3].chars().next().unwrap_or('o'),
                ty: cols[4].to_string(),
                value_ty: cols.get(5).map_or_else(String::new, |s| s.to_string()),
            },
        );
    }
    schema
});

/// One field as it appears on the wire.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long".into())
}

/// The fields of one message, in wire order.
fn fields(b: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos)?;
        let (number, wire) = (key >> 3, key & 7);
        let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
            let end = pos.checked_add(n).ok_or("field length overflows")?;
            let s = b.get(*pos..end).ok_or("truncated field")?;
            *pos = end;
            Ok(s)
        };
        let value = match wire {
            0 => Wire::Varint(varint(b, &mut pos)?),
            1 => Wire::Fixed64(u64::from_le_bytes(
                take(&mut pos, 8)?.try_into().map_err(|_| "fixed64")?,
            )),
            2 => {
                let n = varint(b, &mut pos)? as usize;
                Wire::Bytes(take(&mut pos, n)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(
                take(&mut pos, 4)?.try_into().map_err(|_| "fixed32")?,
            )),
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((number, value));
    }
    Ok(out)
}

fn scalar(ty: &str, w: &Wire<'_>) -> Result<Value, String> {
    Ok(match (ty, w) {
        ("string", Wire::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        ("bytes", Wire::Bytes(b)) => Value::String(BASE64.encode(b)),
        ("bool", Wire::Varint(v)) => Value::Bool(*v != 0),
        ("int32" | "int64", Wire::Varint(v)) => Value::from(*v as i64),
        ("uint32" | "uint64", Wire::Varint(v)) => Value::from(*v),
        ("double", Wire::Fixed64(v)) => Value::from(f64::from_bits(*v)),
        ("float", Wire::Fixed32(v)) => Value::from(f64::from(f32::from_bits(*v))),
        (ty, _) => return Err(format!("field of type {ty} has the wrong wire type")),
    })
}

fn is_scalar(ty: &str) -> bool {
    matches!(
        ty,
        "string" | "bytes" | "bool" | "int32" | "int64" | "uint32" | "uint64" | "double" | "float"
    )
}

/// The JSON of one value of type `ty`.
fn value(ty: &str, w: &Wire<'_>) -> Result<Value, String> {
    if is_scalar(ty) {
        return scalar(ty, w);
    }
    let Wire::Bytes(b) = w else {
        return Err(format!("message {ty} is not length-delimited"));
    };
    message(ty, b)
}

/// Messages whose JSON form is not an object of their fields.
fn special(ty: &str, b: &[u8]) -> Result<Option<Value>, String> {
    let get = |b: &[u8]| -> Result<HashMap<u64, Value>, String> {
        let mut m = HashMap::new();
        for (n, w) in fields(b)? {
            let v = match w {
                Wire::Varint(v) => Value::from(v as i64),
                Wire::Bytes(s) => Value::String(String::from_utf8_lossy(s).into_owned()),
                _ => continue,
            };
            m.insert(n, v);
        }
        Ok(m)
    };
    Ok(match ty {
        "meta.v1.Time" | "meta.v1.MicroTime" => {
            let f = get(b)?;
            let secs = f.get(&1).and_then(Value::as_i64).unwrap_or(0);
            let nanos = f.get(&2).and_then(Value::as_i64).unwrap_or(0);
            if secs == ZERO_TIME_SECONDS || (secs == 0 && nanos == 0 && b.is_empty()) {
                Some(Value::Null)
            } else {
                let t = chrono::DateTime::from_timestamp(secs, nanos as u32).unwrap_or_default();
                let precision = if ty == "meta.v1.Time" {
                    chrono::SecondsFormat::Secs
                } else {
                    chrono::SecondsFormat::Micros
                };
                Some(Value::String(t.to_rfc3339_opts(precision, true)))
            }
        }
        "intstr.IntOrString" => {
            let f = get(b)?;
            Some(if f.get(&1).and_then(Value::as_i64) == Some(1) {
                f.get(&3)
                    .cloned()
                    .unwrap_or_else(|| Value::String(String::new()))
            } else {
                f.get(&2).cloned().unwrap_or_else(|| Value::from(0))
            })
        }
        "resource.Quantity" => Some(
            get(b)?
                .remove(&1)
                .unwrap_or_else(|| Value::String("0".into())),
        ),
        "meta.v1.Duration" => {
            let nanos = get(b)?.get(&1).and_then(Value::as_i64).unwrap_or(0);
            Some(Value::String(format!("{}s", nanos as f64 / 1e9)))
        }
        "meta.v1.FieldsV1" | "runtime.RawExtension" => {
            let raw = fields(b)?.into_iter().find_map(|(n, w)| match (n, w) {
                (1, Wire::Bytes(s)) => Some(s),
                _ => None,
            });
            Some(
                raw.and_then(|r| serde_json::from_slice(r).ok())
                    .unwrap_or(Value::Null),
            )
        }
        _ => None,
    })
}

/// The JSON object of message `ty` from its bytes.
fn message(ty: &str, b: &[u8]) -> Result<Value, String> {
    if let Some(v) = special(ty, b)? {
        return Ok(v);
    }
    let Some(schema) = SCHEMA.get(ty) else {
        return Err(format!("no schema for {ty}"));
    };
    let mut obj = Map::new();
    for (number, w) in fields(b)? {
        let Some(f) = schema.get(&number) else {
            continue;
        };
        match f.label {
            'm' => {
                let Wire::Bytes(entry) = w else { continue };
                let (mut k, mut v) = (String::new(), Value::Null);
                for (n, ew) in fields(entry)? {
                    match n {
                        1 => k = value(&f.ty, &ew)?.as_str().unwrap_or_default().to_string(),
                        2 => v = value(&f.value_ty, &ew)?,
                        _ => {}
                    }
                }
                let map = obj
                    .entry(f.name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                map[&k] = v;
            }
            'r' => {
                let list = obj
                    .entry(f.name.clone())
                    .or_insert_with(|| Value::Array(vec![]));
                let Value::Array(items) = list else { continue };
                match (&w, is_scalar(&f.ty) && f.ty != "string" && f.ty != "bytes") {
                    (Wire::Bytes(packed), true) => {
                        let mut pos = 0;
                        while pos < packed.len() {
                            items.push(scalar(&f.ty, &Wire::Varint(varint(packed, &mut pos)?))?);
                        }
                    }
                    _ => items.push(value(&f.ty, &w)?),
                }
            }
            _ => {
                let v = value(&f.ty, &w)?;
                if !omitted(&f.name, &v) {
                    obj.insert(f.name.clone(), v);
                }
            }
        }
    }
    Ok(Value::Object(obj))
}

/// Fields whose Go type is a pointer: a zero there was set on purpose and is kept.
const POINTER_FIELDS: &[&str] = &[
    "replicas",
    "revisionHistoryLimit",
    "progressDeadlineSeconds",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "deletionGracePeriodSeconds",
    "gracePeriodSeconds",
    "orphanDependents",
    "automountServiceAccountToken",
    "immutable",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "privileged",
    "enableServiceLinks",
    "hostUsers",
    "shareProcessNamespace",
    "leaseDurationSeconds",
];

/// Whether a decoded scalar is a zero value the JSON form omits. The protobuf
/// encoder writes every non-pointer field, zeros included, while Kubernetes' JSON
/// omits empty strings, `false` and `0` (`omitempty`), except in pointer fields.
fn omitted(name: &str, v: &Value) -> bool {
    let zero = match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    };
    zero && !POINTER_FIELDS.contains(&name)
}

/// The schema message of an object of `kind` in `api_version`.
fn message_type(api_version: &str, kind: &str) -> String {
    let group_version = match api_version {
        "v1" | "" => "core.v1".to_string(),
        other => {
            let (group, version) = other.split_once('/').unwrap_or((other, "v1"));
            let short = group.split('.').next().unwrap_or(group);
            format!("{short}.{version}")
        }
    };
    let candidate = format!("{group_version}.{kind}");
    if SCHEMA.contains_key(&candidate) {
        candidate
    } else {
        format!("meta.v1.{kind}")
    }
}

/// Decodes a protobuf request body (with its `k8s\0` envelope) to JSON, with
/// `apiVersion` and `kind` from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let bad = |m: String| ApiError::bad_request(format!("undecodable protobuf body: {m}"));
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing the k8s\\0 prefix".into()))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, w) in fields(rest).map_err(bad)? {
        match (n, w) {
            (1, Wire::Bytes(type_meta)) => {
                for (m, tw) in fields(type_meta).map_err(bad)? {
                    if let Wire::Bytes(s) = tw {
                        let s = String::from_utf8_lossy(s).into_owned();
                        match m {
                            1 => api_version = s,
                            2 => kind = s,
                            _ => {}
                        }
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    let ty = message_type(&api_version, &kind);
    let mut obj = message(&ty, raw).map_err(bad)?;
    if !obj.is_object() {
        return Err(bad(format!("{ty} is not an object")));
    }
    if !api_version.is_empty() {
        obj["apiVersion"] = api_version.into();
    }
    if !kind.is_empty() {
        obj["kind"] = kind.into();
    }
    Ok(obj)
}
