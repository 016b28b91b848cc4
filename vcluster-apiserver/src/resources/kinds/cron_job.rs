//! Cron jobs (batch/v1): concurrency and history defaults, and the job
//! template's pod defaults.

use k8s_openapi::api::batch;
use serde_json::{json, Value};

use super::{
    fields::{default_field, nonnegative, obj_mut},
    pod_spec, BuiltinKind};
use crate::error::FieldCause;
use crate::object;
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

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let schedule = object::path_str(object, "spec.schedule");
        if schedule.is_empty() {
            causes.push(FieldCause::required("spec.schedule"));
        } else {
            if let Err(why) = parse_schedule(schedule) {
                causes.push(FieldCause::invalid("spec.schedule", schedule, why));
            }
            if schedule.contains("TZ") {
                causes.push(FieldCause::invalid(
                    "spec.schedule",
                    schedule,
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ));
            }
        }
        nonnegative(object, "spec.startingDeadlineSeconds", causes);
        match object::path(object, "spec.concurrencyPolicy").and_then(Value::as_str) {
            None | Some("Allow" | "Forbid" | "Replace") => {}
            Some("") => causes.push(FieldCause::required("spec.concurrencyPolicy")),
            Some(other) => causes.push(FieldCause::not_supported(
                "spec.concurrencyPolicy",
                other,
                &["Allow", "Forbid", "Replace"],
            )),
        }
        let template = "spec.jobTemplate.spec.template.spec";
        if let Some(spec) = object::path(object, template) {
            pod_spec::validate(Some(spec), template, causes);
            super::job::validate_restart_policy(Some(spec), &format!("{template}.restartPolicy"), causes);
        }
        nonnegative(object, "spec.successfulJobsHistoryLimit", causes);
        nonnegative(object, "spec.failedJobsHistoryLimit", causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::CRON_JOB, workloads::cron_job))
    }
}

/// Parses a schedule as upstream's cron library does (five fields or a
/// `@` descriptor); the error is the library's wording.
fn parse_schedule(schedule: &str) -> Result<(), String> {
    let mut spec = schedule;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        spec = spec.split_once(' ').map_or("", |(_, rest)| rest.trim());
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => match descriptor.strip_prefix("every ") {
                Some(duration) if is_go_duration(duration) => Ok(()),
                Some(duration) => Err(format!(
                    "failed to parse duration {spec}: time: invalid duration {duration:?}"
                )),
                None => Err(format!("unrecognized descriptor: {spec}")),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u64, u64, &[&str], u64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, first)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            parse_range(expr, min, max, names, first)?;
        }
    }
    Ok(())
}

/// One `number | number-number [/step]` or `*[/step]` of a cron field.
fn parse_range(expr: &str, min: u64, max: u64, names: &[&str], first: u64) -> Result<(), String> {
    let number = |s: &str| -> Result<u64, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u64 + first);
        }
        parse_int(s)
    };
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end) = if matches!(low_and_high[0], "*" | "?") {
        (min, max)
    } else {
        let start = number(low_and_high[0])?;
        match low_and_high.len() {
            1 => (start, start),
            2 => (start, number(low_and_high[1])?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1])?;
            if low_and_high.len() == 1 {
                end = max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!("end of range ({end}) above maximum ({max}): {expr}"));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// An integer as Go's `strconv.Atoi` reads it, with the cron library's
/// errors.
fn parse_int(s: &str) -> Result<u64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax"
        ));
    }
    let n: i64 = s.parse().map_err(|_| {
        format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: value out of range")
    })?;
    u64::try_from(n).map_err(|_| format!("negative number ({n}) not allowed: {s}"))
}

/// A Go duration: one or more decimal numbers, each with a unit.
fn is_go_duration(s: &str) -> bool {
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 || rest[..digits] == *"." {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::invalid_fields;
    use serde_json::json;

    #[test]
    fn schedules_parse_as_robfig_cron_reads_them() {
        for ok in ["*/5 * * * *", "0 0 1 jan mon-fri", "@daily", "@every 1h30m", "0-59/15 * * * ?"] {
            assert_eq!(parse_schedule(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("every day", "expected exactly 5 fields, found 2: [every day]"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
            ("*/0 * * * *", "step of range should be a positive number: */0"),
            ("x * * * *", "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ] {
            assert_eq!(parse_schedule(bad), Err(why.to_owned()), "{bad}");
        }
    }

    #[test]
    fn cron_jobs_need_a_schedule_and_a_job_restart_policy() {
        let cron = |schedule: &str, restart: &str| {
            json!({"spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": restart, "containers": [{"name": "c", "image": "i"}]}}}}}})
        };
        assert!(invalid_fields(&KIND, &cron("*/5 * * * *", "OnFailure")).is_empty());
        assert_eq!(invalid_fields(&KIND, &cron("every day", "Never")), ["spec.schedule"]);
        assert_eq!(
            invalid_fields(&KIND, &cron("@hourly", "Always")),
            ["spec.jobTemplate.spec.template.spec.restartPolicy"]
        );
    }
}
