//! The Helm chart, rendered by a real Helm 3 (`helm lint` and `helm template`, with the
//! default values and with `ci/multi-cluster-values.yaml`), its manifests parsed into
//! k8s-openapi types and checked against what the deployment contract says: a safe
//! StatefulSet, the Services, the disruption budget, least-privilege RBAC, probes,
//! the preStop drain, the security context, and every `kelemetry serve` flag
//! reachable from values.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/kelemetry")
}

/// Helm from the npm registry, installed by `scripts/setup.sh`.
fn helm() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/node_modules/.bin/helm");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "scripts/setup.sh installs helm into target/tools; CI must have it"
    );
    eprintln!("helm not installed (run scripts/setup.sh); skipped");
    None
}

fn run(helm: &Path, args: &[&str]) -> String {
    let out = Command::new(helm).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "helm {args:?}: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The rendered manifests of release `k` in namespace `obs`, as JSON documents.
fn render(helm: &Path, values: Option<&str>) -> Vec<Value> {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let mut args = vec!["template", "k", chart, "--namespace", "obs"];
    let values_path;
    if let Some(v) = values {
        values_path = chart.to_string() + "/" + v;
        args.extend(["-f", values_path.as_str()]);
        run(helm, &["lint", chart, "-f", &values_path]);
    } else {
        run(helm, &["lint", chart]);
    }
    run(helm, &args)
        .split("\n---")
        .filter_map(|doc| serde_yaml_ng::from_str::<Value>(doc).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn one<T: DeserializeOwned>(docs: &[Value], kind: &str, name: &str) -> T {
    let doc = docs
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"));
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
}

fn kelemetry(sts: &StatefulSet) -> Container {
    sts.spec.template.spec.as_ref().unwrap().containers[0].clone()
}

fn args(c: &Container) -> Vec<String> {
    c.args.clone().unwrap_or_default()
}

#[test]
fn the_default_release_is_a_safe_three_node_statefulset_with_jaeger_in_front() {
    let Some(helm) = helm() else {
        return;
    };
    let docs = render(&helm, None);
    let sts: StatefulSet = one(&docs, "StatefulSet", "k-kelemetry");
    let spec = &sts.spec;
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(spec.service_name.as_deref(), Some("k-kelemetry-peers"));
    let pvc = &spec.volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(pvc.metadata.name.as_deref(), Some("data"));
    let pod = spec.template.spec.as_ref().unwrap();
    assert!(
        pod.termination_grace_period_seconds.unwrap() >= 1800,
        "room for a drain"
    );
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let anti = pod
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    assert_eq!(
        anti.preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()[0]
            .pod_affinity_term
            .topology_key,
        "kubernetes.io/hostname"
    );

    let c = kelemetry(&sts);
    let a = args(&c);
    assert_eq!(a[0], "serve");
    assert!(a.contains(&"--data-dir=/var/lib/kelemetry".to_string()));
    assert!(a.contains(
        &"--advertise-addr=$(POD_NAME).k-kelemetry-peers.$(POD_NAMESPACE).svc:7070".to_string()
    ));
    assert!(a.contains(&"--join=k-kelemetry-0.k-kelemetry-peers.obs.svc:7070,k-kelemetry-1.k-kelemetry-peers.obs.svc:7070,k-kelemetry-2.k-kelemetry-peers.obs.svc:7070".to_string()));
    assert!(a.contains(&"--in-cluster=local".to_string()));
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(probe_path(&c.readiness_probe), "/readyz");
    assert_eq!(probe_path(&c.liveness_probe), "/healthz");
    let pre_stop = c.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap();
    let command = pre_stop.exec.as_ref().unwrap().command.clone().unwrap();
    assert_eq!(
        &command[..3],
        [
            "/usr/local/bin/kelemetry",
            "cluster",
            "leave-if-scaled-down"
        ]
    );
    assert!(command.contains(&"--statefulset=k-kelemetry".to_string()));
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    let resources = c.resources.as_ref().unwrap();
    assert!(resources.requests.as_ref().unwrap().contains_key("memory"));
    assert!(resources.limits.as_ref().unwrap().contains_key("memory"));

    let peers: Service = one(&docs, "Service", "k-kelemetry-peers");
    let ps = peers.spec.unwrap();
    assert_eq!(ps.cluster_ip.as_deref(), Some("None"));
    assert_eq!(ps.publish_not_ready_addresses, Some(true));
    let webhook: Service = one(&docs, "Service", "k-kelemetry-webhook");
    assert_eq!(webhook.spec.unwrap().ports.unwrap()[0].port, 8080);
    let query: Service = one(&docs, "Service", "k-kelemetry-query");
    let ports: Vec<i32> = query
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert!(
        ports.contains(&16686) && ports.contains(&17271),
        "{ports:?}"
    );

    let pdb: PodDisruptionBudget = one(&docs, "PodDisruptionBudget", "k-kelemetry");
    assert_eq!(pdb.spec.unwrap().max_unavailable, Some(IntOrString::Int(1)));

    let role: ClusterRole = one(&docs, "ClusterRole", "k-kelemetry-obs");
    for rule in role.rules.unwrap() {
        assert_eq!(rule.verbs, ["get", "list", "watch"], "read-only RBAC");
    }

    let jaeger: Deployment = one(&docs, "Deployment", "k-kelemetry-jaeger");
    let image = jaeger.spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    assert!(image.starts_with("jaegertracing/jaeger:2."), "{image}");
    let config: ConfigMap = one(&docs, "ConfigMap", "k-kelemetry-jaeger");
    let yaml = &config.data.unwrap()["config.yaml"];
    let cfg: Value = serde_yaml_ng::from_str(yaml).unwrap();
    assert_eq!(
        cfg["extensions"]["jaeger_storage"]["backends"]["kelemetry"]["grpc"]["endpoint"],
        "k-kelemetry-query.obs.svc:17271"
    );
    for optional in ["ServiceMonitor", "Ingress", "NetworkPolicy"] {
        assert!(
            docs.iter().all(|d| d["kind"] != optional),
            "{optional} is off by default"
        );
    }
}

#[test]
fn multi_cluster_values_mount_kubeconfigs_and_reach_every_serve_flag() {
    let Some(helm) = helm() else {
        return;
    };
    let docs = render(&helm, Some("ci/multi-cluster-values.yaml"));
    let sts: StatefulSet = one(&docs, "StatefulSet", "k-kelemetry");
    let spec = &sts.spec;
    assert_eq!(spec.replicas, Some(5));
    let pvc = &spec.volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(
        pvc.spec.as_ref().unwrap().storage_class_name.as_deref(),
        Some("fast-ssd")
    );
    let c = kelemetry(&sts);
    let a = args(&c);
    assert!(a.contains(&"--cluster=prod-eu=/etc/kelemetry/clusters/prod-eu/kubeconfig".to_string()));
    assert!(a.contains(&"--in-cluster=local".to_string()));
    let mounts = c.volume_mounts.clone().unwrap();
    assert!(mounts
        .iter()
        .any(|m| m.mount_path == "/etc/kelemetry/clusters/prod-eu" && m.read_only == Some(true)));
    let pod = spec.template.spec.as_ref().unwrap();
    let secret = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "cluster-prod-eu")
        .unwrap();
    assert_eq!(
        secret.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("prod-eu-kubeconfig")
    );
    let anti = pod
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    assert!(
        anti.required_during_scheduling_ignored_during_execution
            .is_some(),
        "hard anti-affinity"
    );

    // Every flag of `kelemetry serve` is set from values, except the ones the chart
    // documents as computed or unused.
    let help = Command::new(env!("CARGO_BIN_EXE_kelemetry"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .map(|l| l.split([' ', '=']).next().unwrap())
        .filter(|f| *f != "help")
        .collect();
    let values_yaml = std::fs::read_to_string(chart().join("values.yaml")).unwrap();
    let documented_as_set_by_chart = |f: &str| values_yaml.contains(&format!("#   --{f} "));
    for flag in &flags {
        let rendered = a
            .iter()
            .any(|x| x.starts_with(&format!("--{flag}=")) || x == &format!("--{flag}"));
        assert!(
            rendered || documented_as_set_by_chart(flag),
            "--{flag} is neither rendered from values nor documented as set by the chart"
        );
    }
    assert!(flags.len() > 40, "{flags:?}");

    let jaeger: Deployment = one(&docs, "Deployment", "k-kelemetry-jaeger");
    let jc = jaeger.spec.template.spec.unwrap().containers[0].clone();
    assert!(jc
        .image
        .unwrap()
        .starts_with("jaegertracing/jaeger-query:1."));
    let env: Vec<(String, String)> = jc
        .env
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert!(env.contains(&("SPAN_STORAGE_TYPE".into(), "grpc".into())));
    assert!(env.contains(&(
        "GRPC_STORAGE_SERVER".into(),
        "k-kelemetry-query.obs.svc:17271".into()
    )));
    for optional in ["ServiceMonitor", "Ingress", "NetworkPolicy"] {
        assert!(
            docs.iter().any(|d| d["kind"] == optional),
            "{optional} is rendered when enabled"
        );
    }
}
