//! Cron jobs (batch/v1): concurrency and history defaults, and the job
//! template's pod defaults.

use k8s_openapi::api::batch;
use serde_json::{json, Value};

use super::{
    fields::{default_field, obj_mut},
    pod_spec, BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, workloads, Printer};

/// The CronJob kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "batch",
    "cronjobs",
    "CronJob",
    Typed::of::<batch::v1::CronJob>(),
    &CronJobs,
)
.short_names(&["cj"])
.in_all()
.with_status();

/// The rules of CronJob objects.
#[derive(Debug)]
struct CronJobs;

impl Strategy for CronJobs {
    fn default(&self, object: &mut Value) {
        if let Some(spec) = obj_mut(object, "spec") {
            default_field(spec, "concurrencyPolicy", json!("Allow"));
            default_field(spec, "suspend", json!(false));
            default_field(spec, "successfulJobsHistoryLimit", json!(3));
            default_field(spec, "failedJobsHistoryLimit", json!(1));
        }
        pod_spec::default_template(object, "/spec/jobTemplate/spec/template/spec");
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::CRON_JOB, workloads::cron_job))
    }
}
