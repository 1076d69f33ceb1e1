//! A Kubernetes API server simulator: enough of the real API for `kubectl` and
//! kube-rs clients (discovery, CRUD, the three patch types, `status` and `scale`
//! subresources, list and watch with resourceVersion semantics, selectors), with
//! every request audited as the real API server does and posted in batches to an
//! audit webhook. State is in memory.
//!
//! Layout:
//! - [`store`]: objects, resourceVersions and the change history watches read.
//! - [`kinds`]: the served resources (built-in and CRD-defined).
//! - [`apiserver`]: the operations (shared by HTTP and in-process controllers).
//! - [`http`]: REST paths, discovery, watch streams.
//! - [`audit`]: audit events and the batching webhook backend.
//! - [`controllers`]: in-process controllers (garbage collector, ...).
//! - [`kubeconfig`]: the kubeconfig written for kubectl and Kelemetry.
//! - [`protobuf`]: Kubernetes protobuf request bodies, decoded to JSON.
//! - [`status`]: API errors as `Status` objects.
//! - [`replay`]: recorded watch streams written back into the store.
//! - [`load`]: a busy cluster's background traffic for benchmarks.
//! - [`views`]: resources served from another resource's storage (events.k8s.io).

#![warn(missing_docs)]

pub mod apiserver;
pub mod audit;
pub mod controllers;
pub mod http;
pub mod kinds;
pub mod kubeconfig;
pub mod load;
pub mod protobuf;
pub mod replay;
pub mod status;
pub mod store;
pub mod views;
