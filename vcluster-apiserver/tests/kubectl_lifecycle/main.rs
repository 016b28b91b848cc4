//! Object lifecycle end to end: finalizers and graceful pod deletion,
//! garbage collection by owner references (Background, Foreground,
//! Orphan, and after a restart), namespace deletion, and
//! CustomResourceDefinitions, driven by the real `kubectl` and by kube-rs
//! (including a `kube::runtime::Controller` with a finalizer).
//!
//! `deletion`: namespaces, graceful pod deletion and finalizers;
//! `garbage_collection`: owner references and propagation; `crds`: custom
//! resource definitions and their objects.

mod crds;
mod deletion;
mod garbage_collection;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use vcluster_testkit::eventually_gone;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::{json, Value};
use vcluster_apiserver::storage::{MemoryStorage, Storage};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::cluster::Options;
use vcluster_testkit::eventually;
use vcluster_testkit::kubectl::Table;
use vcluster_testkit::within;

pub(crate) const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [cronSpec]
            properties:
              cronSpec:
                type: string
                description: When the job runs, in five-field cron syntax.
                pattern: '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'
              image:
                type: string
              replicas:
                type: integer
                minimum: 1
                maximum: 10
                default: 1
          status:
            type: object
            properties:
              replicas:
                type: integer
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

pub(crate) const CRON_TAB: &str = r#"apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-cron
spec:
  cronSpec: "* * * * */5"
  image: my-cron-image
  unknownField: dropped
"#;

pub(crate) const BAD_CRON_TAB: &str = r#"apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: bad-cron
spec:
  cronSpec: "every minute"
  replicas: 11
"#;

pub(crate) fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---------------------------------------------------------------------------
// kubectl
