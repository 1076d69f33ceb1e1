//! How a controller talks to the API server: the same audited operations kubectl's
//! requests go through, addressed by resource and name, with the request URI a real
//! client would have used.

use crate::apiserver::{ApiServer, DeletePropagation, Target};
use crate::audit::Requester;
use crate::status::ApiError;
use crate::store::ResourceId;
use serde_json::Value;
use std::sync::Arc;

/// A controller's client.
pub struct Client {
    api: Arc<ApiServer>,
    who: Requester,
}

/// An object's identity: resource, namespace, name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectId {
    /// Its resource.
    pub resource: ResourceId,
    /// Its namespace (empty when cluster-scoped).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectId {
    /// The identity of a stored object of `resource`.
    pub fn of(resource: &ResourceId, obj: &Value) -> Self {
        Self {
            resource: resource.clone(),
            namespace: obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            name: obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

impl Client {
    /// A client acting as `who`.
    pub fn acting_as(api: Arc<ApiServer>, who: Requester) -> Self {
        Self { api, who }
    }

    /// A client acting as `service_account` of `component` in `kube-system`.
    pub fn new(api: Arc<ApiServer>, service_account: &str, component: &str) -> Self {
        Self {
            api,
            who: Requester::controller(service_account, component),
        }
    }

    /// The API server.
    pub fn api(&self) -> &Arc<ApiServer> {
        &self.api
    }

    fn target(&self, id: &ObjectId, subresource: &str) -> Result<(Target, String), ApiError> {
        let kind = self
            .api
            .kinds()
            .into_iter()
            .find(|k| k.group == id.resource.group && k.plural == id.resource.plural)
            .ok_or_else(|| ApiError::not_found(&id.resource.plural, &id.name))?;
        let base = if kind.group.is_empty() {
            format!("/api/{}", kind.version)
        } else {
            format!("/apis/{}/{}", kind.group, kind.version)
        };
        let mut uri = if kind.namespaced {
            format!("{base}/namespaces/{}/{}", id.namespace, kind.plural)
        } else {
            format!("{base}/{}", kind.plural)
        };
        if !id.name.is_empty() {
            uri = format!("{uri}/{}", id.name);
        }
        if !subresource.is_empty() {
            uri = format!("{uri}/{subresource}");
        }
        let t = Target {
            kind,
            namespace: id.namespace.clone(),
            name: id.name.clone(),
            subresource: subresource.to_string(),
        };
        Ok((t, uri))
    }

    /// Creates `obj` in the collection of `id` (whose name is ignored).
    pub fn create(&self, id: &ObjectId, obj: Value) -> Result<Value, ApiError> {
        let collection = ObjectId {
            name: String::new(),
            ..id.clone()
        };
        let (t, uri) = self.target(&collection, "")?;
        self.api.create(&self.who, &uri, &t, obj)
    }

    /// Replaces the object (or its `status`) with `obj`, guarded by its
    /// resourceVersion.
    pub fn update(&self, id: &ObjectId, subresource: &str, obj: Value) -> Result<Value, ApiError> {
        let (t, uri) = self.target(id, subresource)?;
        self.api.update(&self.who, &uri, &t, obj)
    }

    /// Patches the object (or a subresource).
    pub fn patch(
        &self,
        id: &ObjectId,
        subresource: &str,
        kind: crate::apiserver::patch::PatchType,
        body: Value,
    ) -> Result<Value, ApiError> {
        let (t, uri) = self.target(id, subresource)?;
        self.api.patch(&self.who, &uri, &t, kind, body)
    }

    /// Creates a subresource of the object (a Pod's `binding`).
    pub fn create_subresource(
        &self,
        id: &ObjectId,
        subresource: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        let (t, uri) = self.target(id, subresource)?;
        self.api.create(&self.who, &uri, &t, body)
    }

    /// Deletes the object.
    pub fn delete(&self, id: &ObjectId, p: DeletePropagation) -> Result<Value, ApiError> {
        let (t, uri) = self.target(id, "")?;
        self.api.delete(&self.who, &uri, &t, p, None)
    }
}
