//! Object identity: the five strings that name one Kubernetes object in one cluster.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The identity of one Kubernetes object across clusters.
///
/// Its string form `cluster/group/resource/namespace/name` is the sharding key and the
/// prefix of every record kept about the object, so all of an object's spans, diffs and
/// history sort together and land on the same shard.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct ObjectKey {
    /// Cluster name given by the webhook path or configuration.
    pub cluster: String,
    /// API group, empty for the core group.
    pub group: String,
    /// Plural lowercase resource name, e.g. `deployments`.
    pub resource: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key from its five parts.
    pub fn new(
        cluster: impl Into<String>,
        group: impl Into<String>,
        resource: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Parses the `cluster/group/resource/namespace/name` form.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let key = Self::new(
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        parts.next().is_none().then_some(key)
    }

    /// The five parts in the order of the text form.
    fn parts(&self) -> [&str; 5] {
        [
            &self.cluster,
            &self.group,
            &self.resource,
            &self.namespace,
            &self.name,
        ]
    }

    /// Length in bytes of the `cluster/group/resource/namespace/name` form.
    pub fn text_len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum::<usize>() + 4
    }

    /// Appends the `cluster/group/resource/namespace/name` form to `out`: storage keys
    /// embed it, and building it through `Display` grew each key several times.
    pub fn append_text(&self, out: &mut Vec<u8>) {
        out.reserve(self.text_len());
        for (i, part) in self.parts().iter().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            out.extend_from_slice(part.as_bytes());
        }
    }

    /// Returns the value of one identity tag (`cluster`, `group`, `resource`,
    /// `namespace`, `name`), or `None` for any other tag name.
    pub fn tag(&self, tag: &str) -> Option<&str> {
        match tag {
            "cluster" => Some(&self.cluster),
            "group" => Some(&self.group),
            "resource" => Some(&self.resource),
            "namespace" => Some(&self.namespace),
            "name" => Some(&self.name),
            _ => None,
        }
    }
}

/// The identity tag names, in the order spans carry them.
pub const IDENTITY_TAGS: [&str; 5] = ["cluster", "group", "resource", "namespace", "name"];

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts().iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_form_round_trips() {
        let k = ObjectKey::new("c1", "", "nodes", "", "node-1");
        assert_eq!(k.to_string(), "c1//nodes//node-1");
        let mut appended = b"x".to_vec();
        k.append_text(&mut appended);
        assert_eq!(appended, b"xc1//nodes//node-1");
        assert_eq!(k.text_len(), "c1//nodes//node-1".len());
        assert_eq!(ObjectKey::parse("c1//nodes//node-1"), Some(k));
        assert_eq!(ObjectKey::parse("a/b/c"), None);
        assert_eq!(ObjectKey::parse("a/b/c/d/e/f"), None);
    }
}

/// A cluster name that cannot name a Kubernetes cluster here: it is part of every
/// object key and of the webhook path, so it is kept to a safe alphabet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cluster name {0:?}: use 1-63 characters of a-z, 0-9, '-', '.', '_'")]
pub struct InvalidClusterName(pub String);

/// Checks a cluster name: 1 to 63 characters of `a-z`, `0-9`, `-`, `.`, `_`.
pub fn validate_cluster_name(name: &str) -> Result<(), InvalidClusterName> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(InvalidClusterName(name.to_string()))
    }
}
