//! Generated code for the protocols Kelemetry speaks over gRPC: Jaeger's storage APIs,
//! Kelemetry's own peer RPC, and the OTLP trace service (for the tests' receiver).
//!
//! The `.proto` files are ours, written from the wire facts of Jaeger's and
//! OpenTelemetry's published contracts (message names, field numbers and types).
//! Modules nest by protobuf package, as the generated cross-package paths expect.

#![warn(missing_docs)]

#[cfg(feature = "peer-stub")]
pub mod peer_stub;

/// Kelemetry's own packages.
pub mod kelemetry {
    /// The peer RPC (the package name predates the word "ring" and is kept: it is on
    /// the wire as the gRPC service path).
    pub mod cluster {
        /// `kelemetry.cluster.v1`: peer RPC between nodes.
        pub mod v1 {
            tonic::include_proto!("kelemetry.cluster.v1");
        }
    }
}

/// Jaeger packages. Their messages are documented by Jaeger's published contract
/// (JAEGER.md); our `.proto` files keep only its wire facts.
#[allow(missing_docs)]
pub mod jaeger {
    /// `jaeger.api_v2`: Jaeger's span model.
    pub mod api_v2 {
        tonic::include_proto!("jaeger.api_v2");
    }

    /// Jaeger storage APIs.
    pub mod storage {
        /// `jaeger.storage.v1`: the Jaeger 1.x remote storage plugin API.
        pub mod v1 {
            tonic::include_proto!("jaeger.storage.v1");
        }

        /// `jaeger.storage.v2`: Jaeger v2's remote storage API.
        pub mod v2 {
            tonic::include_proto!("jaeger.storage.v2");
        }
    }
}

/// OpenTelemetry packages. Their messages are documented by the OTLP specification;
/// our `.proto` files keep only its wire facts.
#[allow(missing_docs)]
pub mod opentelemetry {
    /// `opentelemetry.proto.*`.
    pub mod proto {
        /// `opentelemetry.proto.common.v1`.
        pub mod common {
            /// Version 1.
            pub mod v1 {
                tonic::include_proto!("opentelemetry.proto.common.v1");
            }
        }

        /// `opentelemetry.proto.resource.v1`.
        pub mod resource {
            /// Version 1.
            pub mod v1 {
                tonic::include_proto!("opentelemetry.proto.resource.v1");
            }
        }

        /// `opentelemetry.proto.trace.v1`.
        pub mod trace {
            /// Version 1.
            pub mod v1 {
                tonic::include_proto!("opentelemetry.proto.trace.v1");
            }
        }

        /// `opentelemetry.proto.collector.*`: the OTLP receiving services.
        pub mod collector {
            /// `opentelemetry.proto.collector.trace.v1`.
            pub mod trace {
                /// Version 1.
                pub mod v1 {
                    tonic::include_proto!("opentelemetry.proto.collector.trace.v1");
                }
            }
        }
    }
}
