//! Compiles the `.proto` files under `proto/` with the system `protoc`
//! (Debian `protobuf-compiler`, installed by `scripts/setup.sh`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/jaeger/api_v2/model.proto",
        "proto/jaeger/storage/v1/storage.proto",
        "proto/jaeger/storage/v2/trace_storage.proto",
        "proto/jaeger/storage/v2/dependency_storage.proto",
        "proto/opentelemetry/proto/trace/v1/trace.proto",
        "proto/opentelemetry/proto/collector/trace/v1/trace_service.proto",
        "proto/kelemetry/cluster/v1/peer.proto",
    ];
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&protos, &["proto"])?;
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    Ok(())
}
